"""Shared fixtures: an isolated TransferLab home, no network, small image folders."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "datasets" / "cifar10-jpeg-train.tar.gz"
sys.path.insert(0, str(REPO))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.odd_images import png_bomb  # noqa: E402, F401 - (its home: the odd images' maker)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own caches and torch hub folder, and no network at all."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    monkeypatch.setenv("TRANSFERLAB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    import torch

    torch.set_num_threads(TEST_THREADS)
    return home


# Two threads per test process, one when pytest-xdist runs a worker per core (`make test`):
# more threads than cores make every operation wait at its barrier for a preempted sibling
# (README, "Threads"), which made the suite ~2x slower here
TEST_THREADS = 1 if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1 else 2


COLORS = [(220, 40, 40), (40, 200, 60), (50, 70, 230), (230, 220, 40)]


def make_image(path: Path, color, size=(40, 40), seed=0, fmt=None):
    """A noisy single-colour picture: different classes are easy to tell apart."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color)[None, None, :] + rng.integers(-30, 30, (size[1], size[0], 3)),
                  0, 255).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def make_folder(root: Path, classes=3, per_class=12, size=(40, 40), ext="jpg") -> Path:
    for c in range(classes):
        for i in range(per_class):
            make_image(root / f"class_{c}" / f"{i:03d}.{ext}", COLORS[c % len(COLORS)], size,
                       seed=c * 1000 + i)
    return root


def tiny_config(folder, **kw):
    """A seconds-long training recipe on a generated folder (random weights, 32 px)."""
    from core.config import TrainConfig

    base = dict(model="mobilenet_v2", weights="none", data=str(folder), epochs=2,
                freeze_epochs=1, image_size=32, batch_size=8, val_split=0.25, log_every=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def window(qtbot):
    """The main window, shown, with PyTorch loaded; every task cancelled afterwards."""
    from gui.main_window import MainWindow

    w = MainWindow()
    # pytest-qt closes its widgets before fixtures tear down: shut the tasks down first, or
    # a test that fails mid-run leaves training going and closing asks "Stop training and
    # quit?" in a modal box nobody answers (the whole suite hung once that way)
    qtbot.addWidget(w, before_close_func=lambda w: w.shutdown())
    w.show()
    with qtbot.waitSignal(w.torchReady, timeout=60_000):
        w.start_loading_torch()
    yield w
    w.shutdown()  # cancels training, scans, predictions, builds; bounded wait for threads


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """3 classes x 12 images, plus a text file and a truncated JPEG that must be skipped."""
    root = make_folder(tmp_path / "pets")
    (root / "class_0" / "notes.jpg").write_text("this is not an image")
    good = (root / "class_1" / "000.jpg").read_bytes()
    (root / "class_1" / "broken.jpg").write_bytes(good[: len(good) // 3])
    return root


@pytest.fixture
def shared_cifar() -> Path:
    if not SHARED_CIFAR.exists():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_CIFAR} (it lives in ../shared "
                    f"beside the checkout)")
    return SHARED_CIFAR


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny real run for tests that only read it (or copy it: ``clone_run``): 3 classes x
    8 images at 32 px, 2 epochs (the first frozen), weight EMA, random weights."""
    tmp = tmp_path_factory.mktemp("trained")
    folder = make_folder(tmp / "pets", per_class=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(tmp / "home"))
        mp.setenv("TRANSFERLAB_OFFLINE", "1")
        from core.training.trainer import Trainer

        Trainer(tiny_config(folder, ema=0.9), run_dir=tmp / "run").fit()
    return tmp / "run"


def clone_run(run: Path, dest: Path) -> tuple[Path, Path]:
    """A copy of ``run`` and of its data folder under ``dest`` (config.json points at the
    copy): tests may change either. Returns (run, data)."""
    import json
    import shutil

    config = json.loads((run / "config.json").read_text())
    data = Path(shutil.copytree(config["data"], dest / "data"))
    copy = Path(shutil.copytree(run, dest / "run"))
    config["data"] = str(data)
    (copy / "config.json").write_text(json.dumps(config))
    return copy, data


@pytest.fixture(scope="session")
def parity_run(tmp_path_factory):
    """A tiny trained run (EfficientNet-Lite0 at 32 px on 24 px images: bicubic resizing,
    the network enlarging its input itself, an out-of-distribution calibration), its model
    exported to ONNX and pt2 beside model.pt, and the odd images of tests/odd_images.py.
    Shared by the parity, format, export and OOD tests: (run folder, odd-images folder)."""
    from core.frontends.cli import main
    from tests.odd_images import make_odd_images, make_training_folder

    tmp = tmp_path_factory.mktemp("parity")
    data = make_training_folder(tmp / "data")
    odd = make_odd_images(tmp / "odd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(tmp / "home"))
        mp.setenv("TRANSFERLAB_OFFLINE", "1")
        assert main(["train", "--model", "efficientnet_lite0", "--data", str(data),
                     "--epochs", "3", "--freeze-epochs", "3", "--lr", "0.02",
                     "--image-size", "32", "--batch-size", "8", "--val-split", "0.35",
                     "--precision", "32", "--out", str(tmp / "run")]) == 0
        for fmt in ("onnx", "pt2"):
            assert main(["export", str(tmp / "run" / "model.pt"), "--format", fmt,
                         "--out", str(tmp / "run" / f"model.{fmt}")]) == 0
    return tmp / "run", odd


# --- pytest-xdist (make test: -n auto --dist loadgroup) --------------------------------------
SHARED_RUNS = ("parity_run", "trained_run")  # session fixtures that train (tens of seconds)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A file's tests run in one worker (its module fixtures are made once), and the files
    that share a trained session fixture run in the same worker, so it trains once. First
    among the hooks, so the marks exist when pytest-xdist's own hook turns them into groups
    (it writes Node._nodeid, which pytest 9.2 no longer reads: pytest-xdist issue 1386, the
    reason requirements-dev.txt holds pytest at 9.1.1)."""
    for item in items:
        shared = next((f for f in SHARED_RUNS if f in getattr(item, "fixturenames", ())), None)
        item.add_marker(pytest.mark.xdist_group(shared or Path(str(item.fspath)).stem))
