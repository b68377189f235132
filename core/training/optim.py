"""Optimizers over the trainable parameters only, and the learning-rate schedule.

The schedule is a pure function of (epoch, progress) rather than a torch scheduler object,
because the optimizer is rebuilt whenever the trainable set changes and a scheduler would
lose its place; the lesson's StepLR x unfreeze factor is reproduced exactly.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from core.config import TrainConfig


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def param_groups(cfg: TrainConfig, model: nn.Module, head: str) -> list[dict]:
    """The head at the full LR, the rest at ``backbone_lr_factor`` x LR (discriminative
    learning rates: a fresh head needs large steps that would wreck pretrained layers)."""
    head_params = {id(p) for p in model.get_submodule(head).parameters()} if head else set()
    trainable = trainable_parameters(model)
    groups = [{"params": [p for p in trainable if id(p) in head_params], "lr_scale": 1.0},
              {"params": [p for p in trainable if id(p) not in head_params],
               "lr_scale": cfg.backbone_lr_factor}]
    return [g for g in groups if g["params"]]


def build_optimizer(cfg: TrainConfig, model: nn.Module,
                    previous: torch.optim.Optimizer | None = None,
                    head: str = "") -> torch.optim.Optimizer:
    """A fresh optimizer over today's trainable set, keeping moments of kept parameters."""
    groups = param_groups(cfg, model, head)
    if not groups:
        from core.errors import TransferLabError
        raise TransferLabError("Every layer is frozen: nothing would train. Unfreeze the head "
                               "at least.")
    params = [p for g in groups for p in g["params"]]
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if previous is not None:
        for p in params:
            if p in previous.state:
                opt.state[p] = previous.state[p]
    return opt


def unfrozen(cfg: TrainConfig, epoch: int) -> bool:
    """Whether 0-based ``epoch`` trains everything. ``freeze_epochs >= epochs`` keeps the
    freeze for the whole run; ``freeze_epochs == 0`` never applies it."""
    if cfg.freeze_epochs == 0:
        return True
    return cfg.freeze_epochs < cfg.epochs and epoch >= cfg.freeze_epochs


def lr_at(cfg: TrainConfig, epoch: int, progress: float = 0.0) -> float:
    """Learning rate at 0-based ``epoch`` and fraction ``progress`` of it."""
    lr = cfg.lr
    if cfg.freeze_epochs > 0 and unfrozen(cfg, epoch):
        lr *= cfg.unfreeze_lr_factor
    if cfg.scheduler == "step":
        lr *= cfg.gamma ** (epoch // max(1, cfg.step_size))
    elif cfg.scheduler == "cosine":
        lr *= 0.5 * (1 + math.cos(math.pi * (epoch + progress) / cfg.epochs))
    return lr


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
