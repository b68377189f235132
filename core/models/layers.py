"""A Qt-free tree of a model's modules with their trainable state.

The GUI's tree model listens to this (as napari's Qt tree model listens to its plain-Python
tree), the trainer and the CLI drive it, and it is the single place where ``requires_grad`` is
switched, so every view of "what is frozen" agrees.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from typing import TYPE_CHECKING

from core.errors import TransferLabError

if TYPE_CHECKING:
    from torch import nn

# torch is imported lazily: the GUI imports this module (for the state names) before
# PyTorch has finished loading in the background.
TRAINABLE, FROZEN, PARTIAL, EMPTY = "trainable", "frozen", "partial", "empty"


def _bn_types() -> tuple:
    from torch import nn

    return nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm


def is_depthwise(module, min_kernel: int = 1) -> bool:
    """A depthwise convolution (one spatial filter per channel: MobileNet, EfficientNet) whose
    kernel is at least ``min_kernel`` wide."""
    from torch import nn

    return isinstance(module, nn.Conv2d) and 1 < module.groups == module.in_channels \
        == module.out_channels and min(module.kernel_size) >= min_kernel


@dataclass(eq=False)
class LayerNode:
    path: str
    type_name: str
    module: nn.Module = field(repr=False)
    parent: "LayerNode | None" = field(default=None, repr=False)
    children: list["LayerNode"] = field(default_factory=list, repr=False)
    own_params: int = 0
    total_params: int = 0
    trainable_params: int = 0  # kept current by LayerTree (recounted after every edit)

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2] if self.path else "(model)"

    def parameters(self):
        return self.module.parameters()

    @property
    def state(self) -> str:
        if self.total_params == 0:
            return EMPTY
        trainable = self.trainable_params
        if trainable == self.total_params:
            return TRAINABLE
        return FROZEN if trainable == 0 else PARTIAL

    def walk(self) -> Iterator["LayerNode"]:
        yield self
        for child in self.children:
            yield from child.walk()


class LayerTree:
    """The module hierarchy of ``model``; ``listeners`` hear ``(changed_paths)`` after edits."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.root = self._build("", model, None)
        self._by_path = {n.path: n for n in self.root.walk()}
        self.recount()
        self.listeners: list[Callable[[list[str]], None]] = []
        self._held: list[str] | None = None  # paths collected while notifications are held

    def _build(self, path: str, module: nn.Module, parent: LayerNode | None) -> LayerNode:
        own = sum(p.numel() for p in module.parameters(recurse=False))
        node = LayerNode(path, type(module).__name__, module, parent, own_params=own)
        for name, child in module.named_children():
            node.children.append(self._build(f"{path}.{name}" if path else name, child, node))
        node.total_params = own + sum(c.total_params for c in node.children)
        return node

    def recount(self) -> None:
        """Refresh every node's trainable count, bottom-up (views read it many times a
        second; summing parameters on each read made a repaint of the tree take seconds)."""
        def visit(node: LayerNode) -> int:
            own = sum(p.numel() for p in node.module.parameters(recurse=False)
                      if p.requires_grad)
            node.trainable_params = own + sum(visit(c) for c in node.children)
            return node.trainable_params

        visit(self.root)

    def node(self, path: str) -> LayerNode:
        try:
            return self._by_path[path]
        except KeyError:
            raise TransferLabError(f"The model has no layer '{path}'.") from None

    def __iter__(self) -> Iterator[LayerNode]:
        return self.root.walk()

    def set_trainable(self, path: str, trainable: bool) -> None:
        """Switch the whole subtree at ``path``; listeners hear its ancestors changed too."""
        node = self.node(path)
        for p in node.parameters():
            p.requires_grad_(trainable)
        if self._held is None:
            self.recount()
        self._notify(node)

    def _notify(self, node: LayerNode) -> None:
        changed = [n.path for n in node.walk()]
        parent = node.parent
        while parent is not None:
            changed.append(parent.path)
            parent = parent.parent
        if self._held is not None:
            self._held += changed
            return
        for listener in list(self.listeners):
            listener(changed)

    @contextmanager
    def batch(self):
        """Edit many subtrees, then tell listeners once (each path once): a spec touches
        every layer, and a view repainting per edit would stall the GUI."""
        if self._held is not None:  # already inside a batch
            yield
            return
        self._held = []
        try:
            yield
        finally:
            changed, self._held = list(dict.fromkeys(self._held)), None
            self.recount()
            if changed:
                for listener in list(self.listeners):
                    listener(changed)

    def counts(self) -> tuple[int, int]:
        """(frozen, total) parameter counts."""
        total = self.root.total_params
        return total - self.root.trainable_params, total

    def trainable_tensors(self) -> int:
        return sum(1 for p in self.model.parameters() if p.requires_grad)

    def summary(self) -> str:
        """The lesson's wording, so users can compare with what they saw there."""
        frozen, total = self.counts()
        return f"frozen {frozen}/{total} parameters"

    def frozen_spec(self) -> str:
        """The shortest freeze spec that reproduces the current state (saved with runs).

        Parameters held directly by a partly frozen module (none in the offered models)
        are not described by module paths and are left out.
        """
        out: list[str] = []

        def visit(node: LayerNode) -> None:
            if node.state == FROZEN:
                out.append(node.path or "all")
            elif node.state == PARTIAL:
                for child in node.children:
                    visit(child)

        visit(self.root)
        return ",".join(out) or "none"

    def apply_spec(self, spec: str, head: str, arch: str | None = None) -> None:
        """Make exactly ``spec`` frozen and everything else trainable (see ``parse_spec``)."""
        paths = parse_spec(spec, self, head, arch)  # first: a bad spec changes nothing
        with self.batch():
            self.set_trainable("", True)
            for path in paths:
                self.set_trainable(path, False)


def parse_spec(spec: str, tree: LayerTree, head: str, arch: str | None = None) -> list[str]:
    """Expand a freeze spec into module paths.

    Items are comma-separated: ``backbone`` (all but the head, the lesson's phase 1), ``none``,
    ``all``, ``bn`` (every BatchNorm), ``depthwise`` (every depthwise convolution),
    ``depthwise:K`` (those with kernels of K x K or more: a CPU computes the weight gradients
    of 5 x 5 ones 14-28x slower than of 3 x 3 ones, bench/depthwise_grad.py), ``early`` (the
    network's high-resolution layers, see core.catalog; needs ``arch``), ``upto:PATH`` (every layer before PATH in forward order, PATH itself
    stays trainable), ``through:PATH`` (the same and PATH itself), a module path, or a range ``features.0-13``.
    """
    from core.catalog import EARLY_LAYERS

    paths: list[str] = []
    for item in (s.strip() for s in (spec or "none").split(",")):
        if item in ("", "none"):
            continue
        if item == "early":
            if arch not in EARLY_LAYERS:
                raise TransferLabError("The 'early' freeze needs a known architecture.")
            paths += parse_spec(EARLY_LAYERS[arch], tree, head)
            continue
        if item == "all":
            paths.append("")
        elif item == "backbone":
            paths += [p for p in _top_level(tree) if p != head and not head.startswith(p + ".")]
            paths += _siblings_outside(tree, head)
        elif item == "bn":
            paths += [n.path for n in tree if isinstance(n.module, _bn_types())]
        elif m := re.fullmatch(r"depthwise(?::(\d+))?", item):
            paths += [n.path for n in tree if is_depthwise(n.module, int(m.group(1) or 1))]
        elif item.startswith("upto:"):
            paths += _before(tree, item[5:])
        elif item.startswith("through:"):
            paths += _before(tree, item[8:]) + [tree.node(item[8:]).path]
        elif m := re.fullmatch(r"(.+)\.(\d+)-(\d+)", item):
            prefix, lo, hi = m.group(1), int(m.group(2)), int(m.group(3))
            paths += [tree.node(f"{prefix}.{i}").path for i in range(lo, hi + 1)]
        else:
            paths.append(tree.node(item).path)
    return paths


def _top_level(tree: LayerTree) -> list[str]:
    return [c.path for c in tree.root.children]


def _siblings_outside(tree: LayerTree, head: str) -> list[str]:
    """Inside the head's container (MobileNetV2's ``classifier``), freeze what is not the head."""
    out, node = [], tree.node(head)
    while node.parent is not None and node.parent.path:
        out += [s.path for s in node.parent.children if s is not node]
        node = node.parent
    return out


def _before(tree: LayerTree, path: str) -> list[str]:
    """The largest subtrees that come wholly before ``path`` in registration (≈ forward)
    order. Whole subtrees, not leaves: a module with children may hold parameters itself
    (timm's ``BatchNormAct2d`` is a BatchNorm with an activation child)."""
    target = tree.node(path)
    out: list[str] = []

    def visit(node: LayerNode) -> bool:  # True once the target is reached
        for child in node.children:
            if child is target:
                return True
            if _is_ancestor(child, target):
                return visit(child)
            if child.total_params:
                out.append(child.path)
        return False

    visit(tree.root)
    return out


def _is_ancestor(node: LayerNode, other: LayerNode) -> bool:
    return other.path.startswith(node.path + ".")


def apply_bn_policy(model: nn.Module, policy: str = "frozen-eval") -> int:
    """Set BatchNorm layers' mode after ``model.train()``; returns how many are in eval.
    (``TrainConfig.effective_bn_policy`` turns the config's "auto" into one of these.)

    - ``frozen-eval`` (default): BatchNorm whose parameters are all frozen stays in eval mode.
      In train mode it would keep updating its running mean and variance even with
      ``requires_grad=False`` (the lesson's weakness): a frozen layer would still change.
    - ``eval``: every BatchNorm uses its stored statistics, also once unfrozen (its affine
      weights still train). Keras' fine-tuning advice; avoids the jump in the features the
      head was trained on when the backbone unfreezes.
    - ``train``: every BatchNorm updates its statistics (the lesson's behaviour).
    """
    if policy == "train":
        return 0
    n, bn_types = 0, _bn_types()
    for module in model.modules():
        if isinstance(module, bn_types):
            params = list(module.parameters())
            if policy == "eval" or (params and not any(p.requires_grad for p in params)):
                module.eval()
                n += 1
    return n


def output_shapes(model: nn.Module, image_size: int) -> dict[str, tuple[int, ...]]:
    """Each module's output shape (without the batch dimension) from one dry forward pass."""
    import torch

    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for path, module in model.named_modules():
        def hook(_m, _inp, out, path=path):
            if isinstance(out, torch.Tensor):
                shapes[path] = tuple(out.shape[1:])
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return shapes
