import pytest
import torch
from torch import nn

from core.errors import TransferLabError
from core.models.layers import FROZEN, PARTIAL, TRAINABLE, LayerTree, apply_bn_policy, parse_spec
from core.models import build_model, head_path


@pytest.fixture(scope="module")
def mobilenet():
    model, _, _ = build_model("mobilenet_v2", "none", 10)
    return model


def fresh(model):
    for p in model.parameters():
        p.requires_grad_(True)
    return LayerTree(model)


def test_tree_counts_match_the_model(mobilenet):
    tree = fresh(mobilenet)
    total = sum(p.numel() for p in mobilenet.parameters())
    assert tree.root.total_params == total
    assert tree.node("features.0.0").own_params == 3 * 32 * 3 * 3
    assert tree.node("classifier.1").type_name == "Linear"
    assert tree.summary() == f"frozen 0/{total} parameters"


def test_set_trainable_acts_on_exactly_the_subtree(mobilenet):
    tree = fresh(mobilenet)
    heard = []
    tree.listeners.append(heard.append)
    tree.set_trainable("features.3", False)
    inside = {id(p) for p in mobilenet.features[3].parameters()}
    for p in mobilenet.parameters():
        assert p.requires_grad == (id(p) not in inside)
    assert tree.node("features.3").state == FROZEN
    assert tree.node("features").state == PARTIAL
    assert tree.node("features.4").state == TRAINABLE
    assert "features.3.conv.0" in heard[-1] and "" in heard[-1] and "features" in heard[-1]


def test_backbone_spec_freezes_all_but_the_head(mobilenet):
    tree = fresh(mobilenet)
    tree.apply_spec("backbone", head_path(mobilenet))
    assert all(not p.requires_grad for p in mobilenet.features.parameters())
    assert all(p.requires_grad for p in mobilenet.classifier.parameters())
    frozen, total = tree.counts()
    assert frozen == total - (1280 * 10 + 10)
    assert tree.frozen_spec() == "features"


def test_range_and_upto_specs(mobilenet):
    tree = fresh(mobilenet)
    head = head_path(mobilenet)
    assert parse_spec("features.0-2", tree, head) == ["features.0", "features.1", "features.2"]
    tree.apply_spec("upto:features.14", head)
    assert tree.node("features.13").state == FROZEN
    assert tree.node("features.14").state == TRAINABLE
    assert tree.frozen_spec() == ",".join(f"features.{i}" for i in range(14))
    with pytest.raises(TransferLabError, match="no layer 'features.99'"):
        parse_spec("features.99", tree, head)


def test_depthwise_spec_freezes_exactly_the_depthwise_convolutions(mobilenet):
    tree = fresh(mobilenet)
    tree.apply_spec("early,depthwise", head_path(mobilenet), "mobilenet_v2")
    depthwise = [m for m in mobilenet.modules()
                 if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 17  # one per inverted-residual block
    frozen = {id(p) for m in depthwise for p in m.parameters()}
    frozen |= {id(p) for i in range(7) for p in mobilenet.features[i].parameters()}  # early
    for p in mobilenet.parameters():
        assert p.requires_grad == (id(p) not in frozen)
    assert tree.node("features.10").state == PARTIAL  # its pointwise layers still train
    assert parse_spec("depthwise", fresh(build_model("resnet18", "none", 2)[0]), "fc") == []
    assert parse_spec("depthwise:5", tree, head_path(mobilenet)) == []  # all 3 x 3


def test_depthwise_with_a_kernel_size_picks_the_large_kernels():
    model, _, _ = build_model("efficientnet_lite0", "none", 2)
    tree = LayerTree(model)
    large = parse_spec("depthwise:5", tree, head_path(model))
    assert large == [f"blocks.{b}.{i}.conv_dw" for b, n in ((2, 2), (4, 3), (5, 4))
                     for i in range(n)]
    assert len(parse_spec("depthwise", tree, head_path(model))) == 16


def test_frozen_spec_round_trips(mobilenet):
    tree = fresh(mobilenet)
    head = head_path(mobilenet)
    tree.apply_spec("features.0-4,bn", head)
    spec = tree.frozen_spec()
    before = [p.requires_grad for p in mobilenet.parameters()]
    tree.apply_spec(spec, head)
    assert [p.requires_grad for p in mobilenet.parameters()] == before


def test_frozen_batchnorm_keeps_running_stats_during_a_training_step():
    model, _, _ = build_model("resnet18", "none", 4)
    tree = LayerTree(model)
    tree.apply_spec("backbone", head_path(model))
    bn = model.bn1
    before = bn.running_mean.clone(), bn.running_var.clone()
    model.train()
    switched = apply_bn_policy(model)
    assert switched == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert not bn.training and model.fc.training


def test_lesson_bn_behaviour_is_available():
    model, _, _ = build_model("resnet18", "none", 4)
    LayerTree(model).apply_spec("backbone", head_path(model))
    model.train()
    assert apply_bn_policy(model, "train") == 0
    before = model.bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert not torch.equal(model.bn1.running_mean, before)


def test_eval_policy_keeps_unfrozen_batchnorm_statistics_too():
    model, _, _ = build_model("resnet18", "none", 4)
    model.train()
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert apply_bn_policy(model, "frozen-eval") == 0  # nothing frozen: all BN train
    assert apply_bn_policy(model, "eval") == n_bn
    before = model.layer1[0].bn1.running_var.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(model.layer1[0].bn1.running_var, before)
    assert model.layer1[0].bn1.weight.requires_grad


def test_a_spec_notifies_listeners_once(mobilenet):
    tree = fresh(mobilenet)
    heard = []
    tree.listeners.append(heard.append)
    tree.apply_spec("features.0-13", head_path(mobilenet))
    assert len(heard) == 1
    assert len(heard[0]) == len(set(heard[0])) and "features.13.conv.1" in heard[0]
