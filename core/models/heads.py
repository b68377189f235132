"""Where a network's classification head is, and how it is replaced for N classes."""
from __future__ import annotations

from torch import nn

from core.errors import TransferLabError


def head_path(model: nn.Module) -> str:
    """The module path of the classification head: the network's last Linear layer."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TransferLabError(f"{type(model).__name__} has no Linear layer to replace.")
    return linears[-1]


def replace_head(model: nn.Module, num_classes: int) -> str:
    path = head_path(model)
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    old = getattr(parent, attr)
    setattr(parent, attr, nn.Linear(old.in_features, num_classes))
    return path
