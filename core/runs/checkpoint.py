"""checkpoint.pt: everything needed to continue a run, and the torch files of a run folder.

Format 3 (Lightning's layout): the loop's own state at the top (``epoch``, the 0-based index
of the last finished epoch; ``history``; the raw weights in ``state_dict``; ``optimizer``),
and each callback's ``state_dict()`` under its name in ``callbacks`` (FreezeSchedule: the
frozen layers and every change; WeightAveraging: the average; Checkpointing: the best score
and when the run started). Format 2 (one flat dict) is read and converted; newer formats
are refused with a message. torch is imported only when a checkpoint is read or written.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import TransferLabError
from core.paths import atomic_path

CHECKPOINT_FORMAT = "transferlab-checkpoint"
CHECKPOINT_VERSION = 3
LOOP_KEYS = ("epoch", "history", "state_dict", "optimizer")
_NEEDED = (*LOOP_KEYS, "config", "classes", "callbacks")


def checkpoint_payload(*, epoch: int, config: dict, classes: list[str], preprocessing: dict,
                       history: list[dict], state_dict: dict, optimizer: dict,
                       callbacks: dict[str, dict]) -> dict:
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch,
            "config": config, "classes": list(classes), "preprocessing": preprocessing,
            "history": list(history), "state_dict": state_dict, "optimizer": optimizer,
            "callbacks": callbacks}


def save_torch(path: Path, payload: dict) -> None:
    """torch.save, atomically; a failure is one clear line and leaves the old file."""
    import torch

    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except (OSError, RuntimeError) as exc:  # a full disk is a RuntimeError in torch.save
            raise TransferLabError(f"Cannot write {path}: {_write_failure(exc, tmp)}. The "
                                   f"previous {path.name} is unchanged.") from exc


def _write_failure(exc: BaseException, tmp: Path) -> str:
    """Why a save failed, in words. torch.save reports a full disk as an opaque
    "[enforce fail at inline_container.cc] unexpected pos" RuntimeError: say what it means."""
    import errno
    import shutil

    if getattr(exc, "errno", None) == errno.ENOSPC:
        return "the disk is full"
    try:
        free = shutil.disk_usage(tmp.parent).free
    except OSError:
        free = None
    if free is not None and free < 1024**2:  # the failed write used up the last of it
        return f"the disk is full ({free // 1024} KB free)"
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def load_checkpoint(path: Path, model: str | None = None,
                    classes: list[str] | None = None) -> dict:
    """The checkpoint in format 3 (older ones converted); refuses a damaged or foreign file,
    a newer format, and (when given) another network or other classes."""
    import torch

    if not path.exists():
        raise TransferLabError(f"No checkpoint to resume in {path.parent}.")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - damaged, truncated or foreign files
        raise TransferLabError(f"{path} is damaged or not a TransferLab checkpoint "
                               f"({type(exc).__name__}).") from exc
    if not isinstance(ck, dict):
        raise TransferLabError(f"{path} is not a TransferLab checkpoint.")
    version = ck.get("version", 1)
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise TransferLabError(f"{path} was written by a newer TransferLab (checkpoint format "
                               f"{version}; this one reads up to {CHECKPOINT_VERSION}): "
                               f"update TransferLab to continue this run.")
    if version < 3:
        ck = _from_format_2(ck, path)
    if any(k not in ck for k in _NEEDED):
        raise TransferLabError(f"{path} is not a TransferLab checkpoint.")
    if model is not None and ck["config"].get("model") != model:
        raise TransferLabError(f"{path.parent} holds a {ck['config'].get('model')} run, "
                               f"not {model}.")
    if classes is not None and list(ck["classes"]) != list(classes):
        raise TransferLabError(f"The data's classes differ from the run's: {ck['classes']}")
    return ck


def _from_format_2(ck: dict, path: Path) -> dict:
    """Formats 1-2 kept every part at the top: the freeze schedule's (``freeze``,
    ``freeze_changes``) and the weight average's (``averaging``) move under ``callbacks``."""
    needed = ("epoch", "config", "classes", "state_dict", "optimizer", "history", "freeze")
    if any(k not in ck for k in needed):
        raise TransferLabError(f"{path} is not a TransferLab checkpoint.")
    scores = [h.get("val_acc", -1.0) for h in ck["history"]]
    callbacks = {"FreezeSchedule": {"spec": ck["freeze"],
                                    "changes": list(ck.get("freeze_changes", []))},
                 "Checkpointing": {"best_val_acc": max(scores, default=-1.0)}}
    if ck.get("averaging") is not None:
        callbacks["WeightAveraging"] = ck["averaging"]
    return checkpoint_payload(
        epoch=ck["epoch"], config=ck["config"], classes=ck["classes"],
        preprocessing=ck.get("preprocessing", {}), history=ck["history"],
        state_dict=ck["state_dict"], optimizer=ck["optimizer"], callbacks=callbacks)
