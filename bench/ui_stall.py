"""How responsive the window stays while training runs in the worker thread.

A 10 ms QTimer probe records how late each tick fires while a real training run (started from
the Train tab, as a user would) goes on; the longest gap minus 10 ms is the worst stall the
user could feel. Two cases, each for ``--seconds``:

- ``plain``: the run trains with the layer tree fully expanded on screen;
- ``switching``: the same, while every ``--switch-every`` seconds the Model tab switches
  network (a structure build) and the Data tab switches dataset (a scan). The window greys
  those tabs out during a run; the bench drives them through their methods to load the
  GUI thread with exactly the work that used to block it (building the network on the GUI
  thread, waiting for the previous build or scan to stop). Baseline, measured in the same
  run: how long that build takes when done on the GUI thread, as the Model tab used to.

Also measures, in fresh processes, launch to window and launch to "PyTorch ready" (the
background import of PyTorch and the engine), ``--launches`` times on the machine as it is
and as many times again with ``--load`` busy processes beside it (a loaded 2-core machine:
a training run, another app); it prints each case's range. To compare with an older
version, run this file from an export of that commit (it only uses the tabs' public
methods).

    .venv/bin/python bench/ui_stall.py [--seconds 60] [--image-size 64] [--data generated]
                                       [--launches 3] [--load 2] [--launch-only]

Uses the shared CIFAR-10 copy when present (a 2,000-image slice), else a generated folder.
Goal: max stall < 50 ms in both cases. Figures are noisy on a shared machine.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets" / "cifar10-jpeg-train.tar.gz"
MODELS = ("mobilenet_v2", "resnet18", "efficientnet_lite0", "resnet50")


def launch_times(home: str) -> tuple[float, float]:
    """(s to the window, s to "PyTorch ready") of one fresh ``main.py`` process."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TRANSFERLAB_HOME=home)
    out = tempfile.mktemp(suffix=".png")
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "--screenshot", out],
                          capture_output=True, text=True, env=env, timeout=300)
    found = re.search(r"window shown after ([\d.]+) s; PyTorch ready after ([\d.]+) s",
                      proc.stdout)
    if not found:
        raise RuntimeError(f"main.py --screenshot printed: {proc.stdout} {proc.stderr[-500:]}")
    return float(found.group(1)), float(found.group(2))


def _busy() -> None:
    while True:
        pass


def launch_report(home: str, launches: int, load: int) -> None:
    """Launch times on the machine as it is, then beside ``load`` busy processes."""
    import multiprocessing

    for busy in sorted({0, load}):
        hogs = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(busy)]
        for h in hogs:
            h.start()
        try:
            times = [launch_times(home) for _ in range(launches)]
        finally:
            for h in hogs:
                h.terminate()
        window = [w for w, _ in times]
        ready = [r for _, r in times]
        print(f"launch with {busy} busy process{'es' if busy != 1 else ''} beside it "
              f"({launches} launches, load average {os.getloadavg()[0]:.1f}): window "
              f"{min(window):.2f}-{max(window):.2f} s, PyTorch ready {min(ready):.1f}-"
              f"{max(ready):.1f} s (median {statistics.median(ready):.1f} s)")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def generated(root: Path, classes: int = 4, per_class: int = 200) -> str:
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(classes)
    for c in range(classes):
        for i in range(per_class):
            p = root / f"c{c}" / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype="uint8")).save(p)
    return str(root)


def pump(app, until, seconds: float = 600) -> None:
    """Run the event loop until ``until()`` (5 ms naps: each processEvents call is cheap
    but not free)."""
    end = time.monotonic() + seconds
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


class Probe:
    """A 10 ms timer; each tick's lateness is a stall the user would feel."""

    def __init__(self):
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.clock, self.gaps, self.marks = QElapsedTimer(), [], []
        self.none_refs = sys.getrefcount(None)  # see report()
        self.clock.start()
        self.last = self.clock.elapsed()
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        now = self.clock.elapsed()
        self.gaps.append((now, now - self.last))
        self.last = now

    def mark(self, name: str) -> None:
        self.marks.append((self.clock.elapsed(), name))

    def report(self, title: str) -> float:
        self.timer.stop()
        stalls = sorted(g - 10 for _, g in self.gaps[5:])  # skip the start-up ticks
        print(f"[{title}] probe ticks: {len(self.gaps)}; median gap "
              f"{statistics.median(g for _, g in self.gaps):.1f} ms; UI stall p99 "
              f"{stalls[int(len(stalls) * 0.99)]:.0f} ms; max UI stall {stalls[-1]:.0f} ms "
              f"(goal < 50 ms)")
        lost = self.none_refs - sys.getrefcount(None)
        print(f"  references to None lost per second: {lost / (self.clock.elapsed() / 1000):.0f}"
              f" (PySide6 6.12.0 on Python 3.11 drops one per void Qt call; at 0 the "
              f"interpreter aborts; {sys.getrefcount(None)} left)")
        for t, gap in sorted(self.gaps[5:], key=lambda g: -g[1])[:3]:
            before = [n for m, n in self.marks if m <= t]
            print(f"  stall {gap - 10:.0f} ms at {t / 1000:.1f} s, after "
                  f"{before[-1] if before else 'nothing'}")
        return stalls[-1]


def idle(worker) -> bool:
    return worker is None or not worker.thread.isRunning()


def open_window(app, args, home: Path, data: str):
    from gui.main_window import MainWindow

    w = MainWindow()
    w.show()
    ready = []
    w.torchReady.connect(lambda: ready.append(1))
    w.start_loading_torch()
    pump(app, lambda: ready)
    w.data_tab.set_source(data)
    w.model_tab.set_model("efficientnet_lite0", "imagenet")
    w.train_tab.form.set_values(dict(epochs=50, freeze_epochs=1, image_size=args.image_size,
                                      batch_size=32, limit=2000, log_every=20))
    pump(app, lambda: idle(w.data_tab.worker))
    pump(app, lambda: idle(w.model_tab.structure_worker)
         and w.model_tab.panel.arch == "efficientnet_lite0")
    w.select_tab(args.tab)
    w.model_tab.panel.expand(-1)
    return w


def train_case(app, w, args, title: str, switch_data: list[str] | None) -> float:
    """Train for ``args.seconds`` under the probe; with ``switch_data``, switch model and
    dataset every ``args.switch_every`` seconds. Returns the max stall."""
    t0 = time.monotonic()
    w.train_tab.start()
    worker, batches = w.train_tab.worker, []
    worker.batchEnd.connect(batches.append)
    # the probe measures a run that trains: the preparation (decoding the images once, on a
    # fresh cache all of them) can take minutes on a loaded machine
    pump(app, lambda: batches or not w.train_tab.running, seconds=900)
    print(f"[{title}] first batch after {time.monotonic() - t0:.0f} s of preparation")
    probe = Probe()
    for name in ("runStarted", "epochEnd", "phaseChanged", "progress"):
        getattr(worker, name).connect(lambda _e, n=name: probe.mark(n))
    w.model_tab.treeBuilt.connect(lambda: probe.mark("tree shown"))
    w.data_tab.scanned.connect(lambda _s: probe.mark("data summary shown"))
    models, datasets = itertools.cycle(MODELS), itertools.cycle(switch_data or [""])
    end = time.monotonic() + args.seconds
    next_switch, switches, switch_ms = time.monotonic() + args.switch_every, 0, [0.0]
    while time.monotonic() < end and w.train_tab.running:
        app.processEvents()
        time.sleep(0.001)
        if switch_data and time.monotonic() >= next_switch:
            next_switch += args.switch_every
            switches += 1
            model = next(models)
            probe.mark(f"switch to {model}")
            t = time.perf_counter()
            w.model_tab.set_model(model, "none")
            w.model_tab.rebuild_tree()
            w.data_tab.set_source(next(datasets))
            switch_ms.append(1000 * (time.perf_counter() - t))
    w.train_tab.stop()
    print(f"[{title}] {len(batches)} batch updates shown in {args.seconds:.0f} s"
          + (f", {switches} model + dataset switches (the calls themselves: longest "
             f"{max(switch_ms):.0f} ms)" if switch_data else ""))
    stall = probe.report(title)
    pump(app, lambda: not w.train_tab.running)
    return stall


def gui_thread_baseline() -> list[tuple[str, float, float]]:
    """The baseline, per network: (name, ms of the preprocessing look-up the Model tab used
    to do on the GUI thread (for EfficientNet-Lite0 it builds the network), ms of one
    structure build, which the old stop() waited for on the GUI thread when the user switched
    again before it ended)."""
    from core.models import build_model, get_spec, imagenet_preprocessing

    out = []
    for name in MODELS:
        t = time.perf_counter()
        imagenet_preprocessing(get_spec(name))
        t1 = time.perf_counter()
        build_model(name, "none", 10)
        out.append((name, 1000 * (t1 - t), 1000 * (time.perf_counter() - t1)))
    return out


def tree_paint_ms(app, name: str = "efficientnet_lite0") -> tuple[float, float]:
    """(median ms to fill the Model tab's layer panel with a new tree, median ms of one
    repaint of it fully expanded): the GUI-thread steps behind "after tree shown"."""
    import torch

    from core.models import build_model, head_path
    from core.models.layers import LayerTree, output_shapes
    from gui.layer_panel import LayerPanel

    with torch.device("meta"):
        model, _, _ = build_model(name, "none", 10)
        shapes = output_shapes(model, 224)
    panel = LayerPanel()
    panel.resize(1200, 700)
    panel.show()
    fills, paints = [], []
    for _ in range(5):
        tree = LayerTree(model)
        t = time.perf_counter()
        panel.set_tree(tree, shapes, head_path(model), name)
        fills.append(1000 * (time.perf_counter() - t))
        app.processEvents()
    panel.expand(-1)
    app.processEvents()
    for _ in range(10):
        t = time.perf_counter()
        panel.view.viewport().repaint()
        paints.append(1000 * (time.perf_counter() - t))
    panel.close()
    return statistics.median(fills), statistics.median(paints)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60, help="per case")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--switch-every", type=float, default=2.0)
    ap.add_argument("--data", choices=("auto", "generated"), default="auto",
                    help="auto: the shared CIFAR-10 slice when present")
    ap.add_argument("--tab", default="model", choices=("data", "model", "train", "inference"),
                    help="the tab on screen during the run (model: the layer tree, fully "
                    "expanded, mirrors every freeze change: the heaviest repaint)")
    ap.add_argument("--gil-switch-ms", type=float, default=None,
                    help="sys.setswitchinterval for the run (Python's default: 5 ms)")
    ap.add_argument("--launches", type=int, default=3, help="fresh launches per load case")
    ap.add_argument("--load", type=int, default=2,
                    help="busy processes beside the loaded launches (0: none)")
    ap.add_argument("--launch-only", action="store_true", help="only the launch times")
    args = ap.parse_args()
    if args.gil_switch_ms:
        sys.setswitchinterval(args.gil_switch_ms / 1000)
    home = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["TRANSFERLAB_HOME"] = str(home)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, load average before "
          f"{os.getloadavg()[0]:.1f}")
    launch_report(str(home), args.launches, args.load)
    if args.launch_only:
        return

    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    fill, paint = tree_paint_ms(app)
    print(f"layer tree (EfficientNet-Lite0, on the GUI thread): set_tree {fill:.1f} ms, "
          f"one repaint fully expanded {paint:.1f} ms (medians)")
    shared = SHARED.exists() and args.data == "auto"
    data = str(SHARED) if shared else generated(home / "data-a")
    others = [generated(home / "data-b", 3, 60), generated(home / "data-c", 5, 40), data]
    w = open_window(app, args, home, data)
    print(f"data: {'shared CIFAR-10 slice' if shared else 'generated images'}, "
          f"{args.image_size} px, {args.tab} tab on screen")
    stalls = [train_case(app, w, args, "plain", None),
              train_case(app, w, args, "switching", others)]
    baseline = gui_thread_baseline()
    print("baseline, measured now on the GUI thread (preprocessing look-up / one structure "
          "build): " + ", ".join(f"{n} {a:.0f} / {b:.0f} ms" for n, a, b in baseline))
    print(f"max UI stall: plain {stalls[0]:.0f} ms, switching {stalls[1]:.0f} ms "
          f"(goal < 50 ms)")
    w.close()


if __name__ == "__main__":
    main()
