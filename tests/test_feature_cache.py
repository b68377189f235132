"""Frozen-prefix caching: the same training, without recomputing the frozen layers."""
import pytest
import torch

from core.config import TrainConfig
from core.events import Callback, EventCollector, LogLine
from core.models.layers import LayerTree
from core.models import build_model, head_path
from core.models.staging import frozen_prefix, run, stages
from core.data.datasets import load_dataset
from core.training.trainer import Trainer, build_network


@pytest.mark.parametrize("arch", ["mobilenet_v2", "resnet18", "efficientnet_lite0"])
def test_stages_compose_to_the_models_forward(arch):
    model, _, _ = build_model(arch, "none", 5)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(run(stages(arch, model), x), model(x), atol=1e-5)


def test_the_cut_follows_the_layer_tree():
    model, _, _ = build_model("mobilenet_v2", "none", 5)
    tree, st = LayerTree(model), stages("mobilenet_v2", model)
    tree.apply_spec("backbone", head_path(model))
    assert frozen_prefix(tree, st) == 20  # 19 feature blocks + the pooling glue
    tree.apply_spec("features.0-13", head_path(model))
    assert frozen_prefix(tree, st) == 14
    tree.apply_spec("features.1-13", head_path(model))
    assert frozen_prefix(tree, st) == 0  # a trainable first block: nothing to cache
    tree.apply_spec("early", head_path(model), "mobilenet_v2")
    assert frozen_prefix(tree, st) == 7


def tiny(folder, **kw):
    base = dict(model="mobilenet_v2", weights="none", data=str(folder), epochs=3,
                freeze_epochs=3, image_size=32, batch_size=8, val_split=0.25, log_every=0,
                precision="32")  # compared against each other: no timed bf16 choice
    base.update(kw)
    return TrainConfig(**base)


def count_calls(module):
    """Images through ``module`` or the prefix's folded copy of it (core.models.folding
    copies the hook), per epoch: the list is cut at each epoch's end."""
    calls = [[]]
    module.register_forward_hook(lambda m, args, out: calls[-1].append(len(args[0])))
    return calls


class EpochCut(Callback):
    def __init__(self, calls):
        self.calls = calls

    def on_epoch_end(self, event) -> None:
        self.calls.append([])


@pytest.mark.parametrize("flip", [False, True])
def test_cached_epochs_skip_the_prefix_and_learn_the_same(image_folder, tmp_path, flip):
    results = {}
    for cache in (True, False):
        events = EventCollector()
        cfg = tiny(image_folder, cache_frozen=cache, flip=flip)
        data = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed)
        net = build_network(cfg, data)  # handed in, instrumented
        calls = count_calls(net.model.features[0])
        trainer = Trainer(cfg, [events, EpochCut(calls)], run_dir=tmp_path / str(cache),
                          net=net, data=data)
        results[cache] = (trainer.fit(), [sum(c) for c in calls[:3]], trainer)
        logs = [e.message for e in events.of(LogLine)]
        assert any(m.startswith("Caching the frozen layers") for m in logs) == cache
    cached, plain = results[True], results[False]
    images = 27 + 9  # train and validation, every epoch without the cache
    assert plain[1] == [images] * 3
    assert cached[1][0] >= images  # epoch 1 computes each image once (+ the fold's own
    # check of its copy on two images)
    if flip:  # later epochs compute only an orientation not drawn before, at most once each
        assert sum(cached[1][1:]) <= 27 and int(cached[2].caches.train.filled.sum()) == \
            27 + sum(cached[1][1:])
    else:
        assert cached[1][1:] == [0, 0]
    for a, b in zip(cached[0].history, plain[0].history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=2e-2)
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=12.0)  # one of 9 images


def test_flips_cache_each_orientation_when_first_drawn(image_folder, tmp_path):
    trainer = Trainer(tiny(image_folder, flip=True, epochs=1), run_dir=tmp_path / "r")
    trainer.fit()
    cache = trainer.caches.train
    assert cache.store.shape[:2] == (27, 2)
    assert cache.store.dtype == torch.float32  # random weights: values too small for float16
    # one epoch draws one orientation an image: that one is computed, the other is not
    assert cache.filled.sum(1).tolist() == [1] * 27
    prefix = trainer.net.stage_list[:trainer.caches.k]
    train, _ = trainer.loop.loaders()
    idx = torch.arange(27)
    trainer.net.model.eval()  # the prefix as the cache runs it (frozen BatchNorm)
    for variant in (0, 1):
        rows = idx[cache.filled[:, variant]]
        with torch.no_grad():
            direct = run(prefix, train.inputs(rows, torch.full((len(rows),), bool(variant))))
        # (the cache runs the prefix with its BatchNorm folded: the same up to rounding)
        assert (cache.store[rows, variant] - direct).abs().max() <= 1e-4 * direct.abs().max()


def test_unfreezing_a_cached_layer_drops_the_cache(image_folder, tmp_path):
    trainer = Trainer(tiny(image_folder, epochs=1), run_dir=tmp_path / "r")
    trainer.prepare()
    trainer.set_freeze(spec="features")
    assert trainer.caches.k == 20
    trainer.set_freeze(path="features.3", trainable=True)
    assert trainer.caches.k == 3
    trainer.set_freeze(spec="none")
    assert trainer.caches is None
    lesson_bn = Trainer(tiny(image_folder, bn_policy="train"), run_dir=tmp_path / "s")
    lesson_bn.prepare()
    lesson_bn.set_freeze(spec="features")
    assert lesson_bn.caches is None  # BatchNorm would still change: not a fixed function


def test_pretrained_features_are_stored_as_float16(image_folder, tmp_path):
    cfg = tiny(image_folder, model="efficientnet_lite0", weights="imagenet", epochs=1)
    trainer = Trainer(cfg, run_dir=tmp_path / "r")
    result = trainer.fit()
    assert trainer.caches.train.store.dtype == torch.float16
    assert result.status == "finished"


def test_feature_shift_translates_each_map_by_at_most_the_given_cells():
    from core.training.feature_cache import random_shift

    feats = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    assert random_shift(feats, 0) is feats
    assert random_shift(feats.flatten(1), 2).shape == (2, 75)  # pooled features: untouched
    padded = torch.nn.functional.pad(feats, (1, 1, 1, 1), mode="replicate")
    seen = set()
    for seed in range(20):
        out = random_shift(feats, 1, torch.Generator().manual_seed(seed))
        for i in range(2):
            matches = [(dy, dx) for dy in range(3) for dx in range(3)
                       if torch.equal(out[i], padded[i, :, dy:dy + 5, dx:dx + 5])]
            assert len(matches) == 1
            seen.add(matches[0])
    assert len(seen) == 9  # every offset in [-1, 1] x [-1, 1] occurs
