"""What is frozen when: the phases of a run and the user's live changes.

Like Lightning's ``BaseFinetuning``, this callback owns freezing: it applies the frozen
phase's spec at the start, unfreezes everything at the configured epoch (the lesson's
phase 2), and applies the user's toggles and presets between batches. Each change goes
through the layer tree (the one place that switches ``requires_grad``) and then
``loop.trainable_changed``, which rebuilds the optimizer, the cache plan and DDP. Every change
is recorded (``changes``) so that a reopened run can show its markers again.
"""
from __future__ import annotations

from core import events as ev
from core.config import TrainConfig
from core.training.callbacks import TrainingCallback
from core.training.optim import unfrozen


class FreezeSchedule(TrainingCallback):
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.loop = None
        self.changes: list[dict] = []  # {"epoch", "batch", "reason", "spec", "message"}
        self.restored_spec: str | None = None  # what was frozen when the resumed run stopped

    # --- the phases ---------------------------------------------------------------------
    def start_spec(self, epoch: int) -> str:
        return "none" if unfrozen(self.cfg, epoch) else self.cfg.freeze

    def on_fit_start(self, loop) -> None:
        self.loop = loop
        if self.restored_spec is not None:  # a resumed run: freeze what was frozen
            self.apply(spec=self.restored_spec, reason=ev.RESUME, message="Resume")
            self.restored_spec = None

    def on_epoch_start(self, loop, epoch: int) -> None:
        cfg = self.cfg
        if loop.opt is None:  # a fresh run (a resumed one has restored its own state)
            self.apply(spec=self.start_spec(epoch), reason=ev.START,
                       message="Start" if epoch == 0 else "Resume")
        elif epoch > 0 and unfrozen(cfg, epoch) and not unfrozen(cfg, epoch - 1):
            self.apply(spec="none", reason=ev.SCHEDULE,
                       message=f"Epoch {epoch + 1}: backbone unfrozen, "
                               f"LR x{cfg.unfreeze_lr_factor:g}")

    # --- changes ------------------------------------------------------------------------
    def apply(self, spec: str | None = None, path: str | None = None, trainable: bool = False,
              reason: str = ev.USER, message: str = "") -> None:
        """Make exactly ``spec`` frozen, or switch one subtree; runs in the loop's thread
        (queue it through ``state.queue`` from elsewhere)."""
        loop = self.loop
        tree = loop.net.tree
        if spec is not None:
            tree.apply_spec(spec, loop.net.head, self.cfg.model)
        if path is not None:
            tree.set_trainable(path, trainable)
        if not message:
            message = (f"User {'unfroze' if trainable else 'froze'} {path or 'the whole model'}"
                       if path is not None else f"User applied freeze '{spec}'")
        loop.trainable_changed(reason, message)
        self.changes.append({"epoch": loop.epoch + 1, "batch": loop.batch, "reason": reason,
                             "spec": tree.frozen_spec(), "message": message})

    def state_dict(self) -> dict:
        return {"spec": self.loop.net.tree.frozen_spec() if self.loop else self.cfg.freeze,
                "changes": list(self.changes)}

    def load_state_dict(self, state: dict) -> None:
        self.changes = list(state.get("changes", []))
        self.restored_spec = state.get("spec")
