"""Evaluations saved in a run folder: ``evaluation-<source>.csv`` (one row per image) and
``evaluation-<source>.json`` (the metrics, pointing at the CSV). core.inference.evaluate
computes them; this module only names, writes and reads the files (plain data)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

from core.errors import TransferLabError
from core.paths import write_csv_atomic
from core.runs.files import _json, write_json
from core.runs.layout import EVALUATION_PREFIX, MODEL_FILE, RunPaths

EVAL_FORMAT = "transferlab-evaluation"
EVAL_VERSION = 1
CSV_FIELDS = ["path", "true", "predicted", "p_true", "p_predicted", "loss"]
RUN_VAL = "val"  # the source name of "the run's own validation split"


def evaluation_paths(run_dir: str | Path, source: str, model: str = MODEL_FILE
                     ) -> tuple[Path, Path]:
    """(predictions CSV, metrics JSON) of one evaluation source in a run folder; an exported
    file's evaluation is named after it too (``evaluation-val-model.onnx.csv``), so it never
    replaces model.pt's."""
    slug = RUN_VAL if source == RUN_VAL else \
        "folder-" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(source).name) or "data")
    name = Path(model).name
    if name and name != MODEL_FILE:
        slug += "-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    run_dir = RunPaths(run_dir).dir
    return (run_dir / f"{EVALUATION_PREFIX}{slug}.csv",
            run_dir / f"{EVALUATION_PREFIX}{slug}.json")


def write_evaluation(run_dir: str | Path, source: str, model: str, rows: list[dict],
                     metrics: dict) -> tuple[Path, Path]:
    """Writes the CSV, then the JSON that points at it (both atomically)."""
    csv_path, json_path = evaluation_paths(run_dir, source, model)
    write_csv_atomic(csv_path, rows, CSV_FIELDS)
    write_json(json_path, {"format": EVAL_FORMAT, "version": EVAL_VERSION, **metrics,
                           "predictions": csv_path.name})  # (metrics: Evaluation.to_json)
    return csv_path, json_path


def read_evaluation(json_path: str | Path) -> tuple[dict, list[dict]]:
    """(metrics, rows) of a saved evaluation, as written."""
    json_path = Path(json_path)
    try:
        d = _json(json_path)
        if not isinstance(d, dict) or d.get("format") != EVAL_FORMAT:
            raise ValueError("not a TransferLab evaluation")
        with open(json_path.parent / d["predictions"], newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TransferLabError(f"{json_path} is not a readable evaluation ({exc}).") from exc
    return d, rows


def saved_evaluations(run_dir: str | Path) -> list[Path]:
    """The metrics JSONs saved in a run folder, newest first."""
    return RunPaths(run_dir).evaluations()
