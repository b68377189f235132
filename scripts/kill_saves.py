"""Kill a process at random moments while it saves a run folder, many times, and check that
every file in the folder still loads and is whole.

A child process (forked, so torch is imported once) writes config.json, checkpoint.pt,
model.pt, metrics.csv and batches.csv in a loop through the real ``RunStore``; each round's
files carry the round number, so a torn or mixed file is caught, not only an unreadable one.
After the child says it has finished one full round, the parent waits a random time and
sends SIGKILL, then loads every file.

    python scripts/kill_saves.py --kills 300        # the slow, thorough version
    (tests/test_faults.py runs a short one)

Prints the number of kills, how many files were checked, and any stale temp files left.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.runs.layout import (BATCHES_FILE, CHECKPOINT_FILE, CONFIG_FILE,  # noqa: E402
                              METRICS_FILE, MODEL_FILE)

RUN_FILES = (CONFIG_FILE, CHECKPOINT_FILE, MODEL_FILE, METRICS_FILE, BATCHES_FILE)


def _payload(i: int, n: int):
    import numpy as np
    import torch

    # numpy fills the tensor: no torch kernels (and no OpenMP) in the forked child
    data = torch.from_numpy(np.full(n, i, dtype=np.float32))
    return {"round": i, "state_dict": {"w": data}}


def save_round(store, i: int, n: int) -> None:
    rows = [{"epoch": e + 1, "phase": "frozen", "train_loss": i, "train_acc": 0, "val_loss": i,
             "val_acc": 0, "lr": 0.1, "seconds": 1, "images_per_s": 1} for e in range(i % 7 + 1)]
    batches = [{"epoch": 1, "batch": b + 1, "batches": i, "loss": i, "lr": 0.1}
               for b in range(i % 50 + 1)]
    store.write_config({"round": i})
    store.save_model(_payload(i, n))
    store.save_checkpoint(_payload(i, n))
    store.write_metrics(rows, batches)


def _child(run_dir: Path, start: int, n: int, ready_fd: int) -> None:
    import torch

    torch.set_num_threads(1)
    from core.runs.store import RunStore

    store = RunStore(run_dir, resume=True)
    i = start
    save_round(store, i, n)
    os.write(ready_fd, b"r")  # one full round is on disk: from now on, any moment may die
    while True:
        i += 1
        save_round(store, i, n)


def check_folder(run_dir: Path) -> list[str]:
    """Problems found (empty when every file loads and is internally whole)."""
    import csv

    import torch

    problems = []
    try:
        json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))["round"]
    except Exception as exc:  # noqa: BLE001 - any failure is a finding
        problems.append(f"{CONFIG_FILE}: {exc!r}")
    for name in (CHECKPOINT_FILE, MODEL_FILE):
        try:
            d = torch.load(run_dir / name, map_location="cpu", weights_only=True)
            w = d["state_dict"]["w"]
            if not bool((w == d["round"]).all()):
                problems.append(f"{name}: mixed rounds in one file")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: {exc!r}")
    for name, fields in ((METRICS_FILE, 9), (BATCHES_FILE, 5)):
        try:
            with open(run_dir / name, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            expected = int(float(rows[0]["train_loss" if name == METRICS_FILE else "loss"]))
            n_rows = expected % 7 + 1 if name == METRICS_FILE else expected % 50 + 1
            if len(rows) != n_rows or any(len(r) != fields for r in rows):
                problems.append(f"{name}: {len(rows)} rows, expected {n_rows}")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{name}: {exc!r}")
    return problems


def kill_many(run_dir: Path, kills: int, max_delay: float, n: int, seed: int = 0) -> dict:
    """Fork a saver, kill it at a random moment, check the folder; ``kills`` times."""
    rng = random.Random(seed)
    stats = {"kills": 0, "problems": [], "files_checked": 0}
    for k in range(kills):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns
            os.close(r)
            try:
                _child(run_dir, k * 1000, n, w)
            finally:
                os._exit(1)
        os.close(w)
        if os.read(r, 1) != b"r":  # EOF: the child died before saving one round
            os.waitpid(pid, 0)
            raise RuntimeError("the saving child failed before its first round")
        os.close(r)
        _wait(rng.uniform(0, max_delay))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        stats["kills"] += 1
        problems = check_folder(run_dir)
        stats["files_checked"] += len(RUN_FILES)
        stats["problems"] += [f"kill {k}: {p}" for p in problems]
    stats["stale_temp_files"] = sorted(p.name for p in run_dir.glob(".*.tmp"))
    return stats


def _wait(seconds: float) -> None:
    """The random moment of the kill (the point of the exercise: not waiting for anything)."""
    import time

    time.sleep(seconds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=300)
    ap.add_argument("--max-delay", type=float, default=0.2, help="seconds after the first "
                    "round within which the kill lands (uniform)")
    ap.add_argument("--floats", type=int, default=1_000_000, help="tensor size per file")
    ap.add_argument("--dir", help="run folder (default: a temp folder)")
    args = ap.parse_args()
    run_dir = Path(args.dir or tempfile.mkdtemp(prefix="kill-saves-")) / "run"
    import time

    t0 = time.perf_counter()
    stats = kill_many(run_dir, args.kills, args.max_delay, args.floats)
    print(f"kills: {stats['kills']} in {time.perf_counter() - t0:.1f} s; files checked: "
          f"{stats['files_checked']}; problems: {len(stats['problems'])}")
    for p in stats["problems"][:20]:
        print("  " + p)
    print(f"stale temp files left in {run_dir}: {len(stats['stale_temp_files'])}")
    return 1 if stats["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
