"""Issue 14, the Inference tab: Grad-CAM follows the photo, drops add, dialogs remember
their folder, columns fit (each test failed before its fix)."""
from __future__ import annotations

import pytest

from tests.test_newcomer_fixes import run_with_a_live_change  # noqa: F401 - a fixture


# --- item 1: Grad-CAM follows the selected photo ----------------------------------------------
@pytest.fixture(scope="module")
def lite0():
    from core.inference.predict import load_imagenet_model

    return load_imagenet_model("efficientnet_lite0")


@pytest.fixture
def inference_tab(qtbot, lite0):
    from gui.inference_tab import InferenceTab

    t = InferenceTab()
    qtbot.addWidget(t)
    t.torch_ready = True
    t._model_loaded(lite0)
    yield t
    t.shutdown()


@pytest.fixture(scope="module")
def two_photos(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.chelsea()).save(folder / "chelsea.jpg")
    Image.fromarray(data.coffee()).save(folder / "coffee.jpg")
    return [folder / "chelsea.jpg", folder / "coffee.jpg"]


def _row_of(tab, name):
    for r in range(tab.proxy.rowCount()):
        row = tab.table_model.rows[tab.proxy.mapToSource(tab.proxy.index(r, 0)).row()]
        if row.path.endswith(name):
            return r, row
    raise AssertionError(name)


def test_gradcam_follows_each_selected_photos_top1(inference_tab, qtbot, two_photos):
    tab = inference_tab
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(p) for p in two_photos])
    (r_cat, cat), (r_cup, cup) = _row_of(tab, "chelsea.jpg"), _row_of(tab, "coffee.jpg")
    assert cat.topk[0][0] != cup.topk[0][0]
    tab.table.selectRow(r_cat)
    tab.cam_box.setChecked(True)
    assert tab.cam.status.text().startswith("Computing Grad-CAM")  # a busy sign at once
    assert not tab.cam.busy.isHidden()
    qtbot.waitUntil(lambda: tab.cam.status.text().startswith(f"Grad-CAM for “{cat.topk[0][0]}”"),
                    timeout=60_000)
    tab.table.selectRow(r_cup)
    qtbot.waitUntil(lambda: tab.cam.status.text().startswith(f"Grad-CAM for “{cup.topk[0][0]}”"),
                    timeout=60_000)
    assert tab.cam.busy.isHidden()


def test_a_picked_class_is_kept_until_the_model_changes(inference_tab, qtbot, two_photos, lite0):
    tab = inference_tab
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(two_photos[0])])
    cat = tab.table_model.rows[0]
    tab.cam.combo.setCurrentIndex(tab.cam.combo.findText("tench"))
    assert tab.cam.target(cat, lite0.classes)[1] == "tench"
    tab._model_loaded(lite0)  # another model (here the same one, reloaded)
    assert tab.cam.target(cat, lite0.classes) == (lite0.classes.index(cat.topk[0][0]),
                                                  cat.topk[0][0], True)


def test_an_empty_map_says_why(qtbot):
    import numpy as np

    from gui.cam_view import CamControls

    cam = CamControls()
    qtbot.addWidget(cam)
    cam.shown(np.zeros((4, 4), np.float32), "ants", False, "bees")
    assert "is empty" in cam.status.text() and "“bees”" in cam.status.text()
    cam.shown(np.full((4, 4), 0.8, np.float32), "bees", True, "bees")
    assert "is empty" not in cam.status.text()


# --- item 5: adding images adds to the table ---------------------------------------------------
def test_a_second_drop_adds_to_the_table(inference_tab, qtbot, image_folder, two_photos):
    tab = inference_tab
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(image_folder / "class_0")])
    first, rows = len(tab.predictions), tab.table_model.rowCount()
    assert rows > 0
    tab.handle_drop([str(two_photos[0])])  # while nothing runs
    tab.handle_drop([str(two_photos[1])])  # while the previous one may still run: it waits
    qtbot.waitUntil(lambda: len(tab.predictions) == first + 2 and "predict" not in tab.workers,
                    timeout=60_000)
    assert tab.table_model.rowCount() == rows + 2
    assert {p.path for p in tab.predictions} >= {str(p) for p in two_photos}
    tab.clear()
    assert tab.table_model.rowCount() == 0 and tab.predictions == []


# --- item 6: file dialogs start in the last folder used ----------------------------------------
def test_file_dialogs_start_in_the_last_folder_used(inference_tab, qtbot, monkeypatch, tmp_path,
                                                    two_photos):
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    from gui.model_tab import ModelTab

    started_in = []

    def fake_open_files(parent, title, directory, file_filter):
        started_in.append(directory)
        return [str(two_photos[0])], file_filter

    def fake_open_file(parent, title, directory, file_filter):
        started_in.append(directory)
        return "", file_filter

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(fake_open_files))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(fake_open_file))
    with qtbot.waitSignal(inference_tab.predictionsDone, timeout=60_000):
        inference_tab.choose_images()
    assert started_in[0] == str(Path.home())  # first time: the home folder, not the program's
    model_tab = ModelTab()
    qtbot.addWidget(model_tab)
    model_tab.choose_file()  # another dialog starts where the last one ended
    inference_tab.choose_model_file()
    assert started_in[1:] == [str(two_photos[0].parent)] * 2


def test_the_top1_column_fits_a_long_class_name(inference_tab, qtbot, two_photos):
    tab = inference_tab
    tab.resize(1100, 700)
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(two_photos[0])])
    from gui.prediction_table import TOP1_COL

    header = tab.table.horizontalHeader()
    needed = tab.table.fontMetrics().horizontalAdvance("German shepherd")
    assert header.sectionSize(TOP1_COL) >= needed + 12
    assert header.sectionResizeMode(1) != header.ResizeMode.Stretch


def test_a_loaded_model_file_is_named_in_the_model_list(inference_tab, qtbot,
                                                        run_with_a_live_change):
    tab = inference_tab
    path = str(run_with_a_live_change / "model.pt")
    with qtbot.waitSignal(tab.modelLoaded, timeout=60_000):
        tab.load_model_file(path)
    assert tab.source.currentText() == "Model file: model.pt"
    assert tab.source.currentData() == "file:" + path


def test_a_map_for_a_photo_no_longer_selected_is_never_painted(inference_tab, qtbot,
                                                               two_photos, monkeypatch):
    tab = inference_tab
    with qtbot.waitSignal(tab.predictionsDone, timeout=60_000):
        tab.handle_drop([str(p) for p in two_photos])
    (r_cat, _), (r_cup, cup) = _row_of(tab, "chelsea.jpg"), _row_of(tab, "coffee.jpg")
    tab.table.selectRow(r_cat)
    tab.cam_box.setChecked(True)  # the cat's map is being computed...
    painted = []
    original = tab._show_image
    monkeypatch.setattr(tab, "_show_image", lambda image, path="": (
        painted.append(path), original(image, path)))
    tab.table.selectRow(r_cup)  # ...when the cup is selected
    qtbot.waitUntil(lambda: tab.cam.status.text().startswith(f"Grad-CAM for “{cup.topk[0][0]}”"),
                    timeout=60_000)
    # the cat's result, if any, was queued before the cup's: it has been handled by now
    assert len(painted) >= 2 and set(painted) == {cup.path}, painted  # picture, then its map
