"""The frozen prefix with its BatchNorm folded into its convolutions (core.models.folding)
computes what the plain stages compute, for every network family, and never a different
function: a BatchNorm whose convolution's output is also read elsewhere stays as it is."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from core.models import build_model, head_path
from core.models.folding import FoldedStages, fold_stages
from core.models.layers import LayerTree
from core.models.staging import Stage, frozen_prefix, run, stages


def _prefix(arch: str, spec: str = "early"):
    torch.manual_seed(0)
    model, _, _ = build_model(arch, "none", 10)
    for m in model.modules():  # statistics far from (0, 1), so a fold that is wrong shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    model.eval()
    tree = LayerTree(model)
    tree.apply_spec(spec, head_path(model), arch)
    st = stages(arch, model)
    return st[:frozen_prefix(tree, st)]


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "mobilenet_v2", "resnet18"])
def test_the_folded_prefix_computes_the_same_features(arch):
    prefix = _prefix(arch)
    x = torch.randn(4, 3, 64, 64)
    folded, n = fold_stages(prefix, x[:2])
    assert n > 0 and folded is not prefix
    with torch.no_grad():
        want, got = run(prefix, x), run(folded, x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for s in folded if isinstance(s.fn, nn.Module)
               for m in s.fn.modules())
    assert n_bn == 0, "every BatchNorm of these prefixes follows a convolution"
    # the original stages are untouched (the fold works on a copy)
    assert any(isinstance(m, nn.BatchNorm2d) for s in prefix if isinstance(s.fn, nn.Module)
               for m in s.fn.modules())


class _Shared(nn.Module):
    """The convolution's output is read by the BatchNorm and by a shortcut: folding the
    BatchNorm into it would change the shortcut's input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_a_convolution_read_elsewhere_is_not_folded():
    block = _Shared().eval()
    block.bn.running_var.fill_(4.0)
    block.bn.running_mean.fill_(1.0)
    prefix = [Stage("block", block)]
    folded, n = fold_stages(prefix, torch.randn(2, 3, 8, 8))
    assert (folded, n) == (prefix, 0)


def test_the_copy_follows_the_weights():
    prefix = _prefix("efficientnet_lite0")
    fast = FoldedStages(prefix)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fast(x)
        assert fast.folded > 0
        prefix[0].fn.weight.mul_(2.0)  # e.g. a checkpoint loaded in place
        want, got = run(prefix, x), fast(x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_stages_in_train_mode_are_neither_folded_nor_run():
    prefix = _prefix("mobilenet_v2")
    prefix[0].fn.train()
    bn = prefix[0].fn[1]
    before = bn.running_mean.clone()
    assert fold_stages(prefix, torch.randn(2, 3, 32, 32)) == (prefix, 0)
    assert torch.equal(bn.running_mean, before)  # (the check did not run it in train mode)
    prefix[0].fn.eval()
    assert fold_stages(prefix, torch.randn(2, 3, 32, 32))[1] > 0
