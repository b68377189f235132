"""How responsive the window stays while training runs in the worker thread.

A 10 ms QTimer probe records how late each tick fires while a real training run (started from
the Train tab, as a user would) goes on; the longest gap minus 10 ms is the worst stall the
user could feel. Also measures launch-to-window time of `python main.py` in a fresh process.

    .venv/bin/python bench/ui_stall.py [--seconds 60] [--image-size 64]

Uses the shared CIFAR-10 copy when present (a 2,000-image slice), else a generated folder.
Goal: max stall < 50 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets" / "cifar10-jpeg-train.tar.gz"


def launch_time(home: str) -> str:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TRANSFERLAB_HOME=home)
    out = tempfile.mktemp(suffix=".png")
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "--screenshot", out],
                          capture_output=True, text=True, env=env, timeout=120)
    return proc.stdout.strip().split(";")[0]


def make_data(root: Path) -> str:
    if SHARED.exists():
        return str(SHARED)
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for c in range(4):
        for i in range(200):
            p = root / f"c{c}" / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype="uint8")).save(p)
    return str(root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--tab", default="model", choices=("data", "model", "train", "inference"),
                    help="the tab on screen during the run (model: the layer tree, fully "
                    "expanded, mirrors every freeze change: the heaviest repaint)")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="tl-bench-")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["TRANSFERLAB_HOME"] = home
    print(f"launch: {launch_time(home)}")

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication([])
    w = MainWindow()
    w.show()
    ready = []
    w.torchReady.connect(lambda: ready.append(1))
    w.start_loading_torch()
    while not ready:
        app.processEvents()
        time.sleep(0.01)
    data = make_data(Path(home) / "data-folder")
    w.data_tab.set_source(data)
    w.model_tab.set_model("efficientnet_lite0", "imagenet")
    w.train_tab.form.set_values(dict(epochs=3, freeze_epochs=1, image_size=args.image_size,
                                      batch_size=32, limit=2000, log_every=20))
    while w.data_tab.worker is not None and w.data_tab.worker.thread.isRunning():
        app.processEvents()
        time.sleep(0.01)

    while w.model_tab.panel.tree is None or w.model_tab.model_name() != "efficientnet_lite0" \
            or w.model_tab.panel.arch != "efficientnet_lite0":
        app.processEvents()
        time.sleep(0.01)
    w.select_tab(args.tab)
    w.model_tab.panel.expand(-1)
    gaps, clock, batches = [], QElapsedTimer(), []
    clock.start()
    last = [clock.elapsed()]

    big, marks = [], []

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        if now - last[0] > 40 and len(gaps) > 5:
            big.append((now, now - last[0]))
        last[0] = now

    probe = QTimer()
    probe.setInterval(10)
    probe.timeout.connect(tick)
    probe.start()
    w.train_tab.start()
    worker = w.train_tab.worker
    worker.batchEnd.connect(lambda e: batches.append(e))
    for name in ("runStarted", "epochEnd", "phaseChanged", "progress"):
        getattr(worker, name).connect(lambda e, n=name: marks.append((clock.elapsed(), n)))
    end = time.monotonic() + args.seconds
    while time.monotonic() < end and w.train_tab.running:
        app.processEvents()
        time.sleep(0.001)
    probe.stop()
    w.train_tab.shutdown()
    stalls = [g - 10 for g in gaps[5:]]  # skip the start-up ticks
    stalls.sort()
    print(f"training: {len(batches)} batch updates shown in {args.seconds:.0f} s "
          f"({'shared CIFAR-10 slice' if SHARED.exists() else 'generated images'}, "
          f"{args.image_size} px, {args.tab} tab on screen)")
    print(f"probe ticks: {len(gaps)}; median gap {statistics.median(gaps):.1f} ms")
    print(f"UI stall p99: {stalls[int(len(stalls) * 0.99)]:.0f} ms")
    print(f"max UI stall: {stalls[-1]:.0f} ms (goal < 50 ms)")
    for t, gap in sorted(big, key=lambda b: -b[1])[:5]:
        before = [n for m, n in marks if m <= t]
        print(f"  stall {gap - 10:.0f} ms at {t / 1000:.1f} s, after worker event "
              f"{before[-1] if before else 'none'}")


if __name__ == "__main__":
    main()
