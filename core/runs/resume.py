"""What a resumed run trains with: the one rule, for every way a run is continued.

A run continues exactly as config.json recorded it (after fitting to the data, with its
framing). ``--resume`` (or the Runs view's Resume) may change only how it is executed and
how long it goes on; anything else is refused, naming the setting. An elastic restart
(torchrun ``--max-restarts``) runs the original command line again: its settings are
ignored for everything the run recorded, so the fitted image size, epochs and crop stay.
"""
from __future__ import annotations

from core.config import TrainConfig, flag
from core.errors import TransferLabError

# how the run is executed, not what it computes
EXECUTION_KEYS = ("device", "precision", "threads", "compile", "log_every")
# what --resume may change: the execution, and how many epochs in all
RESUME_MAY_CHANGE = frozenset({"epochs", *EXECUTION_KEYS})


def resumed_config(recorded: TrainConfig, asked: TrainConfig, where: str = "config.json",
                   restarted: bool = False) -> TrainConfig:
    """The config a resumed run trains with: ``recorded`` with the execution settings of
    ``asked`` (and its epochs, unless this is an elastic restart). A resume that asks for
    any other change is refused (nothing is written before this check)."""
    cfg = TrainConfig.from_dict(recorded.to_dict())
    for key in (EXECUTION_KEYS if restarted else sorted(RESUME_MAY_CHANGE)):
        setattr(cfg, key, getattr(asked, key))
    if restarted:
        return cfg.validate()
    for key, value in asked.to_dict().items():
        if key not in RESUME_MAY_CHANGE and value != getattr(recorded, key) and \
                not (key == "crop" and value is None):  # (crop: recorded once the data is seen)
            raise TransferLabError(
                f"--resume continues the run as it was configured: {key} is "
                f"{getattr(recorded, key)!r} in {where}, not {value!r} ({flag(key)}). Start "
                f"a new run (another --out) to change it.")
    return cfg.validate()


def check_epochs(cfg: TrainConfig, epochs_done: int, where: str) -> None:
    """A resumed run may not plan fewer epochs than it has done (it would "finish" at once
    and record a shorter plan than its own history)."""
    if cfg.epochs < epochs_done:
        raise TransferLabError(f"{where} has done {epochs_done} epochs: --epochs must be at "
                               f"least that (now {cfg.epochs}; nothing was changed).")
