"""Single-image latency (drop to result) and responsiveness with 1,000 dropped images.

    .venv/bin/python bench/inference_latency.py [--model mobilenet_v2] [--runs 30]

1. core: open + resize + centre-crop + forward + top-5 for one 224 px photo, median of runs.
2. GUI: the Inference tab's drop handler to the `predictionsDone` signal (worker thread and
   signal delivery included), median of runs.
3. 1,000 generated images dropped at once: total time and the longest stall of a 10 ms QTimer
   probe in the GUI thread meanwhile.
Weights are random (`weights=None`) for MobileNetV2, whose ImageNet file cannot be downloaded
here; latency does not depend on the weights' values. Goal: < 50 ms per image.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets sys.path
from common import peak_rss_gb


def photo(path: Path) -> Path:
    from PIL import Image
    from skimage import data

    Image.fromarray(data.chelsea()).save(path)  # 451 x 300, a real photo
    return path


def many_images(root: Path, n: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = root / f"{i:04d}.jpg"
        Image.fromarray(rng.integers(0, 255, (160, 200, 3), dtype="uint8")).save(p)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--many", type=int, default=1000)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["TRANSFERLAB_HOME"] = tempfile.mkdtemp(prefix="tl-lat-")
    tmp = Path(tempfile.mkdtemp(prefix="tl-lat-img-"))
    import torch

    from core.models import build_model
    from core.inference.predict import LoadedModel, predict_paths

    torch.set_num_threads(2)
    model, pre, _ = build_model(args.model, "none", None)
    model.eval()
    from core.models import imagenet_categories

    lm = LoadedModel(args.model, model, imagenet_categories(), pre, "benchmark")
    cat = photo(tmp / "chelsea.jpg")
    for _ in range(3):
        predict_paths(lm, [cat], 5)
    core_ms = []
    for _ in range(args.runs):
        t = time.perf_counter()
        predict_paths(lm, [cat], 5)
        core_ms.append(1000 * (time.perf_counter() - t))
    print(f"{args.model}, {pre.image_size} px, {torch.get_num_threads()} threads")
    print(f"core single image (open..top-5): median {statistics.median(core_ms):.1f} ms, "
          f"best {min(core_ms):.1f} ms")

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from gui.inference_tab import InferenceTab

    app = QApplication([])
    tab = InferenceTab()
    tab.show()
    tab.torch_ready = True
    tab._model_loaded(lm)
    done = []
    tab.predictionsDone.connect(done.append)

    def wait_done(n_before):
        while len(done) == n_before:
            app.processEvents()
            time.sleep(0.0005)

    gui_ms = []
    for i in range(args.runs + 3):
        n = len(done)
        t = time.perf_counter()
        tab.handle_drop([str(cat)])
        wait_done(n)
        if i >= 3:
            gui_ms.append(1000 * (time.perf_counter() - t))
    print(f"GUI drop to result: median {statistics.median(gui_ms):.1f} ms, "
          f"best {min(gui_ms):.1f} ms (goal < 50 ms)")

    folder = many_images(tmp / "many", args.many)
    clock, gaps = QElapsedTimer(), []
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    probe = QTimer(interval=10, timeout=tick)
    probe.start()
    n = len(done)
    t = time.perf_counter()
    tab.handle_drop([str(folder)])
    wait_done(n)
    probe.stop()
    print(f"{args.many} dropped images: {time.perf_counter() - t:.1f} s, "
          f"{tab.table_model.rowCount()} rows, max UI stall {max(gaps[2:]) - 10:.0f} ms")
    print(f"peak memory: {peak_rss_gb():.2f} GB")
    tab.shutdown()


if __name__ == "__main__":
    main()
