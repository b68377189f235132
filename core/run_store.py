"""A run's folder: ``config.json``, ``metrics.csv``, ``checkpoint.pt`` (to resume) and
``model.pt`` (the best model, ready for ``predict``). Every write is atomic."""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from core.errors import TransferLabError
from core.paths import atomic_path, runs_dir, write_csv_atomic, write_text_atomic

MODEL_FORMAT = "transferlab-model"
BATCH_FIELDS = ["epoch", "batch", "batches", "loss", "lr"]
METRIC_FIELDS = ["epoch", "phase", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                 "seconds", "images_per_s"]


def new_run_dir(model: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_dir() / f"{stamp}-{model}"
    n = 1
    while path.exists():
        n += 1
        path = runs_dir() / f"{stamp}-{model}-{n}"
    return path


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir).expanduser()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransferLabError(f"Cannot create the run folder {self.dir}: "
                                   f"{exc.strerror or exc}") from exc

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def model_path(self) -> Path:
        return self.dir / "model.pt"

    def write_config(self, config: dict) -> None:
        write_text_atomic(self.dir / "config.json", json.dumps(config, indent=2) + "\n")

    def write_metrics(self, history: list[dict], batches: list[dict] | None = None) -> None:
        write_metrics_csv(self.dir / "metrics.csv", history)
        if batches is not None:
            write_csv_atomic(self.dir / "batches.csv", batches, BATCH_FIELDS)

    def save_checkpoint(self, payload: dict) -> None:
        _save(self.checkpoint_path, payload)

    def save_model(self, payload: dict) -> None:
        _save(self.model_path, payload)

    def load_checkpoint(self) -> dict:
        if not self.checkpoint_path.exists():
            raise TransferLabError(f"No checkpoint to resume in {self.dir}.")
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)


def _save(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except OSError as exc:
            raise TransferLabError(f"Cannot write {path}: {exc.strerror or exc}") from exc


def model_payload(arch: str, model: nn.Module, classes: list[str], preprocessing: dict,
                  config: dict, metrics: dict) -> dict:
    """What ``model.pt`` holds: enough to predict with no other file."""
    return {"format": MODEL_FORMAT, "version": 1, "arch": arch, "classes": list(classes),
            "preprocessing": preprocessing, "config": config, "metrics": metrics,
            "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def write_metrics_csv(path: str | Path, history: list[dict]) -> None:
    write_csv_atomic(path, history, METRIC_FIELDS)


def read_metrics(run_dir: str | Path) -> list[dict]:
    """A finished run's history, for reopening its charts."""
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        raise TransferLabError(f"{run_dir} has no metrics.csv: is it a TransferLab run folder?")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        out.append({k: (row[k] if k == "phase" else float(row[k])) for k in METRIC_FIELDS})
        out[-1]["epoch"] = int(out[-1]["epoch"])
    return out


def read_batches(run_dir: str | Path) -> list[dict]:
    """Per-batch losses of a run (empty for runs without batches.csv)."""
    path = Path(run_dir) / "batches.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{"epoch": int(r["epoch"]), "batch": int(r["batch"]),
                 "batches": int(r["batches"]), "loss": float(r["loss"]), "lr": float(r["lr"])}
                for r in csv.DictReader(f)]


def history_row(event) -> dict:
    return {k: v for k, v in asdict(event).items() if k in METRIC_FIELDS}
