"""Smoke test of the PyInstaller build (`make dist-test`): slow, not in the default suite.

Runs dist/TransferLab/TransferLab (offscreen) through every feature the README promises:
the window (--screenshot: launch-to-window time), train, predict, Grad-CAM, evaluate (the
run's split and a labelled folder), export to ONNX and pt2, predict and evaluate on the
exported files, the Inference tab on the trained model. Then the parity check of
tests/test_parity.py on the bundle's own answers: every path gives the same top-1 and
probabilities within 1e-4 (predict's printed 4 decimals: within 1.5e-4) on the odd images of
tests/odd_images.py, and the same skip reason for every unreadable one. Prints each step's
result and time, and the dist size.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
APP = REPO / "dist" / "TransferLab" / "TransferLab"
TOL = 1e-4

from tests.odd_images import (UNREADABLE, differences, from_evaluation_rows,  # noqa: E402
                              from_lines, make_odd_images, make_training_folder)


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


class Bundle:
    def __init__(self, env):
        self.env, self.failures = env, []

    def run(self, name: str, args: list[str], check, timeout: int = 900):
        """Run the app with ``args``; ``check(proc)`` returns a one-line summary (truthy)
        or raises/returns '' for a failure."""
        t = time.perf_counter()
        proc = subprocess.run([str(APP), *args], capture_output=True, text=True, env=self.env,
                              timeout=timeout)
        secs = time.perf_counter() - t
        try:
            summary = proc.returncode == 0 and check(proc)
        except Exception as exc:  # noqa: BLE001 - a check's failure is reported, not raised
            summary = ""
            proc.stderr += f"\ncheck failed: {type(exc).__name__}: {exc}"
        print(f"{name}: {'ok' if summary else 'FAILED'} in {secs:.1f} s"
              + (f": {summary}" if summary else f" (exit {proc.returncode})"), flush=True)
        if not summary:
            self.failures.append((name, proc.stdout[-1500:] + proc.stderr[-2500:]))
        return proc


def _evaluation(run_dir: Path, source: str, model: str) -> dict:
    """The rows of the evaluation the bundle saved (CSV) and its skipped files (JSON)."""
    slug = "val" if source == "val" else f"folder-{Path(source).name}"
    if model != "model.pt":
        slug += f"-{model}"
    meta = json.loads((run_dir / f"evaluation-{slug}.json").read_text())
    with open(run_dir / meta["predictions"], newline="") as f:
        return from_evaluation_rows(list(csv.DictReader(f)), meta["skipped"])


def main() -> int:
    if not APP.exists():
        print(f"no build at {APP}: run `make dist` first")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="tl-dist-"))
    app = Bundle(dict(os.environ, QT_QPA_PLATFORM="offscreen",
                      TRANSFERLAB_HOME=str(tmp / "home"), TRANSFERLAB_OFFLINE="1"))
    data, odd, run = make_training_folder(tmp / "data"), make_odd_images(tmp / "odd"), tmp / "run"
    answers: dict[str, dict] = {}

    shot = tmp / "shot.png"
    app.run("screenshot", ["--screenshot", str(shot), "--tab", "model"],
            lambda p: shot.exists() and p.stdout.strip())
    app.run("train", ["train", "--model", "efficientnet_lite0", "--data", str(data),
                      "--epochs", "3", "--freeze-epochs", "3", "--lr", "0.02",
                      "--image-size", "32", "--batch-size", "8", "--val-split", "0.35",
                      "--precision", "32", "--out", str(run)],
            lambda p: (run / "model.pt").exists() and
            [ln for ln in p.stdout.splitlines() if "End |" in ln][-1])
    for fmt in ("onnx", "pt2"):
        app.run(f"export {fmt}", ["export", str(run / "model.pt"), "--format", fmt,
                                  "--out", str(run / f"model.{fmt}")],
                lambda p: "top-1 agrees on 16/16" in p.stdout and p.stdout.splitlines()[0])
    for model in ("model.pt", "model.onnx", "model.pt2"):
        proc = app.run(f"predict {model}", ["predict", str(run / model), str(odd), "--topk", "2"],
                       lambda p: f"{len(from_lines(p.stdout))} files")
        answers[f"predict {model}"] = from_lines(proc.stdout)
        for source in ("val", str(odd)):
            args = ["evaluate", str(run / model)] + ([] if source == "val" else ["--data", source])
            proc = app.run(f"evaluate {model} on {Path(source).name}", args,
                           lambda p: p.stdout.strip().splitlines()[-1])
            if source != "val" and proc.returncode == 0:
                answers[f"evaluate {model}"] = _evaluation(run, source, model)
    report = tmp / "check.json"  # the data doctor (cleanlab, scikit-learn: in the bundle)
    app.run("check (data doctor)", ["check", str(data), "--json", str(report)],
            lambda p: report.exists() and p.stdout.strip().splitlines()[0])
    proc = app.run("Inference tab with Grad-CAM",
                   ["--screenshot", str(tmp / "inference.png"), "--tab", "inference",
                    "--predict", str(run / "model.pt"), str(odd / "green" / "cmyk.jpg"),
                    "--cam"], lambda p: [ln for ln in p.stdout.splitlines()
                                         if ln.startswith("grad-cam: Grad-CAM for")][0])
    proc = app.run("Inference tab on the odd images",
                   ["--screenshot", str(tmp / "odd.png"), "--tab", "inference", "--predict",
                    str(run / "model.pt"), str(odd)],
                   lambda p: f"{len(from_lines(p.stdout))} files")
    answers["Inference tab"] = from_lines(proc.stdout)

    reference = answers.get("predict model.pt", {})
    problems = [] if len(reference) == 12 else [f"predict model.pt listed {len(reference)} files"]
    problems += [f"{name} not skipped as '{why}'" for name, why in UNREADABLE.items()
                 if why not in str(reference.get(name))]
    for what, got in answers.items():  # against the most precise printout (8 decimals)
        tol = TOL + 5e-5 if what.startswith("predict") else TOL
        problems += differences(answers.get("Inference tab", {}), got, what, tol)
    print(f"parity over {len(answers)} paths x {len(reference)} files: "
          f"{'ok' if not problems else 'FAILED'}")
    for line in problems:
        print("  " + line)
    print(f"dist size: {size_of(APP.parent) / 1024**3:.2f} GB ({APP.parent})")
    for name, err in app.failures:
        print(f"--- {name} output ---\n{err}")
    return 1 if app.failures or problems else 0


if __name__ == "__main__":
    sys.exit(main())
