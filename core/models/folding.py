"""BatchNorm folded into the convolution before it, for the passes of a frozen prefix.

A BatchNorm in eval mode is a fixed per-channel affine map, ``(x - mean) / sqrt(var + eps)
* weight + bias``; after a convolution it can be folded into that convolution's weights and
bias, so the activations are read and written once instead of twice (and, under bf16
autocast, not cast to float32 and back around the normalisation). The cached prefix of a
frozen network is such a fixed function: measured on the Sapphire Rapids kind (2 threads,
EfficientNet-Lite0's prefix up to stride 8, 176 px, batch 64, channels_last) folding took it
from 80 to 118 img/s in float32 and from 133 to 162 img/s with bf16 (`bench/autotune.py`
prints it per machine). The features change only by rounding (float32: ~1e-6 relative).

``FoldedStages`` serves a list of stages whose parameters do not train: the folded copy is
made from the current weights and remade when any parameter or buffer changes (each
tensor's version counter, so an in-place load counts; a write through ``.data`` does not
count, so nothing that changes these weights may write that way: core.training.averaging
swaps in place). Which convolution feeds which
BatchNorm is found by tracing one pass (a BatchNorm whose input is a convolution's output
tensor), and the copy is used only when it gives the original's output on that input
(float32); otherwise the original stages serve, unchanged.
"""
from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn

from core.models.staging import Stage, run

TOLERANCE = 1e-4  # largest difference from the original's output, relative to its largest value


def _norm_types() -> tuple[type, ...]:
    """BatchNorm classes whose eval forward is the affine map (then, for timm's, its
    dropout and activation), so that removing the map leaves exactly the rest."""
    try:
        from timm.layers.norm_act import BatchNormAct2d
    except ImportError:  # pragma: no cover - timm is a dependency
        return (nn.BatchNorm2d,)
    return (nn.BatchNorm2d, BatchNormAct2d)


def _foldable(bn: nn.Module) -> bool:
    """(Only eval-mode stages reach here: fold_stages returns early for any in train mode.)"""
    return type(bn) in _norm_types() and bn.running_mean is not None


def _with_modules(stages: list[Stage], modules: nn.ModuleList) -> list[Stage]:
    """``stages`` with their modules, in order, taken from ``modules`` (the copy)."""
    it = iter(modules)
    return [Stage(s.path, next(it) if isinstance(s.fn, nn.Module) else s.fn) for s in stages]


def _pairs(root: nn.Module, sample: torch.Tensor, stages: list[Stage]) -> list[tuple]:
    """(convolution, BatchNorm) pairs: the BatchNorm's input is the convolution's output."""
    made: dict[int, nn.Conv2d] = {}
    keep, pairs, handles = [], [], []

    def conv_out(module, _args, out):
        made[id(out)] = module
        keep.append(out)  # (no id is reused while the pass runs)

    def bn_in(module, args):
        conv = made.get(id(args[0]))
        if conv is not None and _foldable(module) and conv.out_channels == module.num_features:
            pairs.append((conv, module))

    for m in root.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_out))
        elif isinstance(m, nn.BatchNorm2d):
            handles.append(m.register_forward_pre_hook(bn_in))
    try:
        with _exact(sample.device.type):
            run(stages, sample)
    finally:
        for h in handles:
            h.remove()
    return pairs


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Module:
    """Fold ``bn`` into ``conv`` in place; returns what replaces ``bn`` (its dropout and
    activation, or nothing)."""
    scale = torch.rsqrt(bn.running_var.float() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.float()
    shift = -bn.running_mean.float() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.float()
    if conv.bias is not None:
        shift = shift + conv.bias.float() * scale
    w = conv.weight
    conv.weight = nn.Parameter((w.float() * scale.view(-1, *[1] * (w.dim() - 1))).to(w.dtype),
                               requires_grad=False)
    conv.bias = nn.Parameter(shift.to(w.dtype), requires_grad=False)
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if m is not None]
    return nn.Sequential(*rest) if rest else nn.Identity()


@contextlib.contextmanager
def _exact(device_type: str):
    """float32 as float32 for the check (CUDA's default TF32 convolutions would round both
    passes to 10-bit mantissas and reject every fold)."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad(), torch.autocast(device_type, enabled=False):
            yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


def _replace(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    for parent in root.modules():
        for name, child in parent.named_children():
            if child is old:
                parent._modules[name] = new


def fold_stages(stages: list[Stage], sample: torch.Tensor) -> tuple[list[Stage], int]:
    """(a folded copy of ``stages``, how many BatchNorm layers it folded); the stages
    themselves, and 0, when any of them is in train mode (a BatchNorm there would use and
    update batch statistics), nothing folds, or the copy's output on ``sample`` differs."""
    root = nn.ModuleList([s.fn for s in stages if isinstance(s.fn, nn.Module)])
    if len(sample) == 0 or any(m.training for m in root.modules() if m is not root):
        return stages, 0
    copied = copy.deepcopy(root).eval()
    pairs = _pairs(copied, sample, _with_modules(stages, copied))
    if not pairs:
        return stages, 0
    for conv, bn in pairs:
        _replace(copied, bn, _fold(conv, bn))
    out = _with_modules(stages, copied)  # (a stage that was a BatchNorm: its replacement)
    with _exact(sample.device.type):
        want, got = run(stages, sample).float(), run(out, sample).float()
    if want.shape != got.shape or \
            (want - got).abs().max() > TOLERANCE * max(1.0, want.abs().max().item()):
        return stages, 0
    return out, len(pairs)


def _versions(stages: list[Stage]) -> tuple:
    return tuple((id(t), t._version, t.data_ptr())
                 for s in stages if isinstance(s.fn, nn.Module)
                 for t in (*s.fn.parameters(), *s.fn.buffers()))


class FoldedStages:
    """Calls ``stages`` (which must not train) through their folded copy, remade when their
    weights change; ``folded`` says how many BatchNorm layers the copy folded."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages
        self._key: tuple | None = None
        self._fast = stages
        self.folded = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = _versions(self.stages)
        if key != self._key and len(x):
            self._fast, self.folded = fold_stages(self.stages, x[:2])
            self._key = key
        return run(self._fast, x)
