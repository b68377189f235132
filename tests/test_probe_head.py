"""A new head started as a linear probe of the pretrained features (head_init="probe")."""
from __future__ import annotations

import torch
from torch import nn

from tests.conftest import tiny_config


class Colours(nn.Module):
    """A stand-in network: its features are the input's mean colour, its head a Linear."""

    def __init__(self, classes: int):
        super().__init__()
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


def coloured(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 60, (len(labels), 3, 8, 8), generator=g, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        images[i, c] += 120
    return images


def to_input(x):
    return x.float() / 255


def test_the_probe_start_classifies_images_it_never_saw():
    from core.models.probe_head import STRENGTHS, start_as_probe

    torch.manual_seed(0)
    model = Colours(3)
    labels = torch.arange(3).repeat(40)
    before = (model(to_input(coloured(labels, 1))).argmax(1) == labels).float().mean()
    start = start_as_probe(model, "fc", coloured(labels), labels, 3, to_input, seed=0)
    after = (model(to_input(coloured(labels, 1))).argmax(1) == labels).float().mean()
    assert before < 0.7 and after == 1.0  # other images of the same colours
    assert start.images == 120 and start.strength in STRENGTHS and start.held_accuracy == 1.0
    assert model.training  # left in the mode it came in


def test_a_probe_of_three_images_starts_without_measuring_itself():
    from core.models.probe_head import STRENGTHS, start_as_probe

    model = Colours(3)
    labels = torch.arange(3)
    start = start_as_probe(model, "fc", coloured(labels), labels, 3, to_input)
    assert start.held_accuracy is None and start.strength == STRENGTHS[1]
    assert (model(to_input(coloured(labels))).argmax(1) == labels).all()
    assert "held-out" not in start.describe()


def test_a_sample_takes_the_same_number_from_each_class():
    from core.models.head_init import per_class_sample

    labels = torch.tensor([0] * 50 + [1] * 500 + [2] * 7)
    picked = labels[per_class_sample(labels, 3, seed=3, per_class=20)]
    assert torch.bincount(picked).tolist() == [20, 20, 7]  # a small class gives all it has
    again = per_class_sample(labels, 3, seed=3, per_class=20)
    assert torch.equal(per_class_sample(labels, 3, seed=3, per_class=20), again)


def test_a_run_started_from_a_probe_says_so_and_starts_from_its_head(image_folder, tmp_path):
    from core.data.datasets import load_dataset
    from core.training.trainer import build_network

    cfg = tiny_config(image_folder, head_init="probe")
    data = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed)
    logs: list[str] = []
    net = build_network(cfg, data, log=logs.append)
    assert any(m.startswith("the new head starts as a linear probe") for m in logs)
    plain = build_network(tiny_config(image_folder), data, log=logs.append)
    head, other = net.model.get_submodule(net.head), plain.model.get_submodule(plain.head)
    assert not torch.equal(head.weight, other.weight)
    zero = build_network(tiny_config(image_folder, head_init="zero"), data, log=logs.append)
    assert not zero.model.get_submodule(zero.head).weight.any()
