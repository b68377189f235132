"""The run folder: its one home.

- ``layout``: every file name (config.json, metrics.csv, ..., training.lock) and ``RunPaths``
- ``files``: reading and writing the small files (settings, history, status, label)
- ``record``: ``RunRecord``, what every front end and resume read
- ``store``: ``RunStore``, the training process's writer (lock first), and ``delete_run``
- ``lock``: the OS lock one training (or deleting) process holds
- ``checkpoint``: checkpoint.pt's format (3; 2 converted) and the torch files' saving
- ``resume``: what a resumed or restarted run may change
- ``split``: split.json, the images a run trains and validates on (and their review state)
- ``evaluations``: evaluation-*.csv/json
- ``listing``: the list of runs (the Runs view, ``transferlab runs``)

Nothing here imports torch at import time: the GUI reads runs while PyTorch loads.
"""
from core.runs.files import (history_row, read_batches, read_freeze_changes, read_metrics,
                             read_status, set_label, write_metrics_csv)
from core.runs.layout import (CONFIG_FILE, METRICS_FILE, MODEL_FILE, RunPaths, is_run_dir,
                              new_run_dir)
from core.runs.lock import RunBusy, RunLock, is_locked
from core.runs.record import RunRecord

__all__ = ["CONFIG_FILE", "METRICS_FILE", "MODEL_FILE", "RunBusy", "RunLock", "RunPaths",
           "RunRecord", "history_row", "is_locked", "is_run_dir", "new_run_dir",
           "read_batches", "read_freeze_changes", "read_metrics", "read_status", "set_label",
           "write_metrics_csv"]
