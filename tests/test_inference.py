"""Inference: core prediction helpers, Grad-CAM, and the Inference tab driven by drops."""
import csv

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage
from PySide6.QtWidgets import QMessageBox

from core.config import TrainConfig
from core.inference.explain import crop_box, gradcam
from core.inference.predict import (load_imagenet_model, load_model_file, predict_paths,
                          write_predictions_csv)
from core.training.trainer import Trainer
from gui.inference_tab import InferenceTab
from gui.prediction_table import PROB_COL
from tests.conftest import make_folder, make_image


@pytest.fixture(scope="module")
def chelsea(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "chelsea.jpg"
    Image.fromarray(data.chelsea()).save(path)
    return path


@pytest.fixture(scope="module")
def imagenet_lite0():
    return load_imagenet_model("efficientnet_lite0")


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    folder = make_folder(tmp / "shapes")
    run = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: restore the variable after
        mp.setenv("TRANSFERLAB_HOME", str(tmp / "home"))
        Trainer(TrainConfig(model="mobilenet_v2", weights="none", data=str(folder), epochs=1,
                            freeze_epochs=0, image_size=32, batch_size=8), run_dir=run).fit()
    return run / "model.pt"


def _coordinate_image(w, h):
    """Red encodes x and green encodes y (to the nearest pixel, within 8 bits' reach)."""
    from PIL import Image

    xs = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    ys = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    arr = np.stack([xs, ys, np.zeros_like(xs)], -1).round().astype(np.uint8)
    return Image.fromarray(arr)


@pytest.mark.parametrize("w, h, resize, crop", [(400, 300, 256, 224), (300, 400, 256, 224),
                                                 (640, 256, 256, 224), (100, 100, 100, 100)])
def test_crop_box_is_where_the_real_centre_crop_came_from(w, h, resize, crop):
    """Read the crop's edges back from the pixels the model sees: they must be crop_box."""
    from core.data.images import resize_center_crop

    pixels = resize_center_crop(_coordinate_image(w, h), resize, crop).numpy()
    crop = pixels.astype(np.float32)
    left, top, right, bottom = crop_box(w, h, resize, crop.shape[-1])
    # each edge pixel's value, mapped back to the original's coordinates
    seen_left = crop[0, :, 0].mean() / 255 * (w - 1)
    seen_right = crop[0, :, -1].mean() / 255 * (w - 1)
    seen_top = crop[1, 0, :].mean() / 255 * (h - 1)
    seen_bottom = crop[1, -1, :].mean() / 255 * (h - 1)
    px = max(w, h) / 255 + 1.5  # 8-bit steps plus the edge pixel's own width after resizing
    assert abs(seen_left - left) <= px and abs(seen_top - top) <= px
    assert abs(seen_right - (right - 1)) <= px and abs(seen_bottom - (bottom - 1)) <= px


def test_gradcam_has_the_photos_size_and_looks_at_the_cat(imagenet_lite0, chelsea):
    heat = gradcam(imagenet_lite0, chelsea, imagenet_lite0.classes.index("tiger cat"))
    assert heat.shape == (300, 451) and heat.dtype == np.float32
    assert 0 <= heat.min() and heat.max() <= 1 and heat.max() > 0.5
    left, top, right, bottom = crop_box(451, 300, 256, 224)
    assert heat[:, :left].max() == 0  # the margin the model never saw
    # the hottest point falls on Chelsea's face (box x 90-300, y 60-260, read off the photo)
    y, x = np.unravel_index(heat.argmax(), heat.shape)
    assert 90 <= x <= 300 and 60 <= y <= 260


def test_batches_are_reported_as_they_finish_and_csv_export(tmp_path, imagenet_lite0,
                                                          image_folder):
    seen = []
    results = predict_paths(imagenet_lite0, [image_folder], topk=3, batch_size=10,
                            on_results=seen.append, thumb_size=24)
    assert [len(b) for b in seen] == [10, 10, 10, 8]  # 38 files: 36 images + 2 bad ones
    good = [r for r in results if not r.error]
    assert all(r.thumb[0] == 24 and len(r.thumb[2]) == 24 * 24 * 3 for r in good)
    every = predict_paths(imagenet_lite0, [r.path for r in good[:4]], topk=1000)
    for r, full in zip(good, every):
        probs = [p for _, p in full.topk]
        assert len(probs) == 1000 and sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert probs == sorted(probs, reverse=True) and min(probs) >= 0
        assert r.topk == [(c, pytest.approx(p, abs=1e-6)) for c, p in full.topk[:3]]
    out = tmp_path / "predictions.csv"
    write_predictions_csv(out, results)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 38
    broken = [r for r in rows if r["file"].endswith("broken.jpg")][0]
    assert broken["top1"] == "" and broken["error"].startswith("corrupt image")
    first = [r for r in rows if r["file"] == good[0].path][0]
    assert first["top1"] == good[0].topk[0][0]
    assert float(first["probability"]) == pytest.approx(good[0].topk[0][1], abs=1e-6)


@pytest.fixture
def tab(qtbot, imagenet_lite0):
    t = InferenceTab()
    qtbot.addWidget(t)
    t.torch_ready = True
    t._model_loaded(imagenet_lite0)
    yield t
    t.shutdown()


def test_drop_files_and_folders_skips_bad_files_with_reasons(tab, qtbot, image_folder, chelsea,
                                                             tmp_path):
    nested = make_image(tmp_path / "more" / "deep" / "x.png", (10, 200, 10))
    (tmp_path / "readme.txt").write_text("not an image")
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000) as done:
        tab.handle_drop([str(image_folder), str(chelsea), str(tmp_path / "more"),
                         str(tmp_path / "readme.txt")])
    assert done.args == [36 + 2 + 1 + 1 + 1]
    assert tab.table_model.rowCount() == 36 + 1 + 1
    skipped = tab.skipped_view.toPlainText()
    assert "notes.jpg: not an image" in skipped and "readme.txt: not an image" in skipped
    assert "broken.jpg: corrupt image" in skipped
    cat = [p for p in tab.predictions if p.path == str(chelsea)][0]
    assert cat.topk[0][0] in {"tabby", "tiger cat", "Egyptian cat"}
    assert any(p.path == str(nested) and p.topk for p in tab.predictions)  # found 2 levels down


def test_table_sorts_by_probability_and_selection_shows_bars(tab, qtbot, image_folder):
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(image_folder / "class_0")])
    tab.table.sortByColumn(PROB_COL, Qt.DescendingOrder)
    probs = [tab.table_model.rows[tab.proxy.mapToSource(tab.proxy.index(r, 0)).row()].topk[0][1]
             for r in range(tab.proxy.rowCount())]
    assert probs == sorted(probs, reverse=True)
    tab.table.selectRow(0)
    assert len(tab.bars.items) == 5 and tab.preview.pixmap() is not None


def test_dropping_a_model_file_loads_it(tab, qtbot, trained_model):
    with qtbot.waitSignal(tab.modelLoaded, timeout=60_000) as loaded:
        tab.handle_drop([str(trained_model)])
    assert "3 classes" in loaded.args[0]
    assert tab.lm.classes == ["class_0", "class_1", "class_2"]


def test_a_model_of_another_architecture_shows_an_error(tab, qtbot, trained_model, tmp_path):
    import torch

    payload = torch.load(trained_model, weights_only=True)
    payload["arch"] = "resnet18"
    torch.save(payload, tmp_path / "wrong.pt")
    tab.load_model_file(str(tmp_path / "wrong.pt"))
    qtbot.waitUntil(lambda: bool(tab.findChildren(QMessageBox)), timeout=30_000)
    texts = [b.text() for b in tab.findChildren(QMessageBox)]
    assert any("does not match the resnet18 architecture" in t for t in texts)
    assert tab.lm.arch == "efficientnet_lite0"  # the previous model stays usable


def test_pasted_image_is_predicted(tab, qtbot):
    image = QImage(64, 64, QImage.Format_RGB888)
    image.fill(QColor("orange"))
    QGuiApplication.clipboard().setImage(image)
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.paste()
    assert tab.table_model.rowCount() == 1
    assert tab.predictions[0].path.endswith("pasted image.png")


def test_gradcam_toggle_overlays_the_preview(tab, qtbot, chelsea, monkeypatch):
    import threading

    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(chelsea)])
    tab.table.selectRow(0)
    plain = tab.preview.pixmap().toImage()
    shown_in = []
    original = tab._show_image
    monkeypatch.setattr(tab, "_show_image", lambda *args: (
        shown_in.append(threading.current_thread() is threading.main_thread()),
        original(*args)))
    tab.cam_box.setChecked(True)
    # one worker decodes the preview, then computes the map: it is gone once the map is shown
    qtbot.waitUntil(lambda: "view" not in tab.workers and tab.cam.busy.isHidden(),
                    timeout=60_000)
    qtbot.waitUntil(lambda: len(shown_in) >= 2, timeout=10_000)
    assert all(shown_in)  # the worker's result was painted from the GUI thread
    assert tab.preview.pixmap().toImage() != plain
