"""The desktop app driven through its widgets (pytest-qt, offscreen)."""
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from core.config import PRESETS
from gui.main_window import MainWindow
from tests.conftest import REPO, make_folder


def setup_run(w, qtbot, folder, **form):
    with qtbot.waitSignal(w.data_tab.scanned, timeout=30_000):
        w.data_tab.set_source(str(folder))
    w.model_tab.set_model("mobilenet_v2", "none")
    values = dict(epochs=2, freeze_epochs=1, image_size=32, batch_size=8, val_split=0.25)
    values.update(form)
    w.train_tab.form.set_values(values)


def blocked_in_pause(state) -> bool:
    """Whether some thread is waiting inside ``state.check()`` (paused between batches)."""
    import sys

    for frame in sys._current_frames().values():
        f, waiting = frame, False
        while f is not None:
            if f.f_code.co_name == "wait" and f.f_code.co_filename.endswith("threading.py"):
                waiting = True
            if f.f_code.co_name == "check" and f.f_locals.get("self") is state:
                return waiting
            f = f.f_back
    return False


def messages(w):
    return [b.text() for b in w.findChildren(QMessageBox)]


def test_window_shows_before_torch_and_data_tab_lists_classes(window, qtbot, image_folder):
    assert window.train_tab.start_btn.isEnabled()
    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000):
        window.data_tab.set_source(str(image_folder))
    table = window.data_tab.table
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == \
        ["class_0", "class_1", "class_2"]
    assert "notes.jpg: not an image" in window.data_tab.skipped.toPlainText()
    # a title + 8 samples per class, filled a class row per turn of the event loop
    qtbot.waitUntil(lambda: window.data_tab.grid.count() == 3 * (1 + 8), timeout=5_000)


def test_train_from_the_gui_fills_the_charts(window, qtbot, image_folder):
    setup_run(window, qtbot, image_folder)
    tab = window.train_tab
    # the thread ends just after the run's result arrives: the buttons follow the thread
    with qtbot.waitSignal(tab.trainingActive, timeout=120_000,
                          check_params_cb=lambda active: not active):
        with qtbot.waitSignal(tab.runFinished, timeout=120_000) as blocker:
            qtbot.mouseClick(tab.start_btn, Qt.LeftButton)
    assert blocker.args[0].status == "finished"
    xs, ys = tab.charts.curves["val_acc"].getData()
    assert list(xs) == [1.0, 2.0] and len(ys) == 2
    assert len(tab.charts.curves["batch_smooth"].getData()[0]) >= 2
    assert len(tab.charts.markers) == 4  # the unfreeze marker, once per plot
    log = tab.log_view.toPlainText()
    assert "Epoch 2 End | Train Loss:" in log and "backbone unfrozen" in log
    assert tab.status.text().startswith("Training finished.")
    assert tab.start_btn.isEnabled() and not tab.stop_btn.isEnabled()


def test_pause_resume_and_stop(window, qtbot, tmp_path):
    folder = make_folder(tmp_path / "big", per_class=40)
    setup_run(window, qtbot, folder, epochs=20, batch_size=4)
    tab = window.train_tab
    batches = []
    tab.start()
    tab.worker.batchEnd.connect(lambda e: batches.append(e))
    qtbot.waitUntil(lambda: len(batches) >= 2, timeout=60_000)
    tab.toggle_pause()
    assert tab.pause_btn.text() == "Resume"
    # the signal that it paused: the training thread blocks in TaskState.check's wait
    qtbot.waitUntil(lambda: blocked_in_pause(tab.worker.state), timeout=30_000)
    QApplication.processEvents()  # deliver the batches it reported before blocking
    paused_at = len(batches)
    QApplication.processEvents()
    assert blocked_in_pause(tab.worker.state) and len(batches) == paused_at
    tab.toggle_pause()
    qtbot.waitUntil(lambda: len(batches) > paused_at, timeout=30_000)
    with qtbot.waitSignal(tab.runFinished, timeout=30_000) as blocker:
        tab.stop()
    assert blocker.args[0].status == "stopped"
    # the thread's `finished` reaches the GUI thread as a queued signal: wait for it
    qtbot.waitUntil(lambda: tab.start_btn.isEnabled(), timeout=10_000)
    assert not tab.running and not tab.stop_btn.isEnabled()


def test_closing_mid_training_asks_then_stops_cleanly(window, qtbot, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "big", per_class=40)
    setup_run(window, qtbot, folder, epochs=50, batch_size=4)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.Yes)
    tab = window.train_tab
    tab.start()
    qtbot.waitUntil(lambda: tab.progress.value() > 0, timeout=60_000)
    thread = tab.worker.thread
    assert window.close()
    assert asked and "checkpoint stays on disk" in asked[0]
    assert not thread.isRunning()


def test_closing_can_be_cancelled(window, qtbot, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "big", per_class=40)
    setup_run(window, qtbot, folder, epochs=50, batch_size=4)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    window.train_tab.start()
    qtbot.waitUntil(lambda: window.train_tab.running, timeout=10_000)
    assert not window.close()
    assert window.train_tab.running


def test_an_error_in_the_worker_reaches_a_dialog(window, qtbot, image_folder, tmp_path):
    junk = tmp_path / "weights.pth"
    junk.write_text("not weights")
    setup_run(window, qtbot, image_folder)
    window.model_tab.set_model("mobilenet_v2", str(junk))
    tab = window.train_tab
    with qtbot.waitSignal(tab.trainingActive, timeout=60_000,
                          check_params_cb=lambda active: not active):
        tab.start()
    assert any("not a readable PyTorch weights file" in m for m in messages(window))
    assert tab.start_btn.isEnabled()  # the app stays usable


def test_a_finished_run_reopens_with_its_charts(window, qtbot, image_folder, tmp_path):
    from core.config import TrainConfig
    from core.training.trainer import Trainer

    run = tmp_path / "run"
    Trainer(TrainConfig(model="mobilenet_v2", weights="none", data=str(image_folder),
                        epochs=2, freeze_epochs=1, image_size=32, batch_size=8),
            run_dir=run).fit()
    window.open_run(str(run))
    charts = window.train_tab.charts
    assert list(charts.curves["train_loss"].getData()[0]) == [1.0, 2.0]
    assert len(charts.curves["batch_raw"].getData()[0]) == 10  # ceil(33 / 8) batches x 2 epochs
    assert len(charts.markers) == 4
    window.open_run(str(tmp_path))
    assert any("no metrics.csv" in m for m in messages(window))


def test_settings_persist_across_sessions(qtbot, image_folder):
    first = MainWindow()
    qtbot.addWidget(first)
    first.model_tab.set_model("resnet18", "none")
    first.train_tab.form.set_values({"epochs": 7, "lr": 0.0005})
    first.data_tab.source = str(image_folder)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.model_tab.model_name() == "resnet18" and second.model_tab.weights() == "none"
    assert second.train_tab.form.values()["epochs"] == 7
    assert second.train_tab.form.values()["lr"] == pytest.approx(0.0005)
    assert second.data_tab.source == str(image_folder)


def test_seed_preset_sets_the_lessons_recipe(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.model_tab.set_model("resnet18", "none")
    form = w.train_tab.form
    form.preset.setCurrentIndex(form.preset.findData("seed"))
    v = form.values()
    assert (v["epochs"], v["freeze_epochs"], v["lr"], v["image_size"]) == (5, 2, 0.001, 224)
    assert w.model_tab.model_name() == "mobilenet_v2" and w.model_tab.weights() == "imagenet"
    form.fields["epochs"].setValue(3)
    assert form.preset.currentData() == "custom"


def test_screenshot_option_renders_a_png(tmp_path, isolated_home):
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "--screenshot", str(out),
                           "--tab", "train"], capture_output=True, text=True, timeout=120,
                          env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin",
                               "TRANSFERLAB_OFFLINE": "1",
                               "TRANSFERLAB_HOME": str(isolated_home)})
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "window shown after" in proc.stdout


def test_layer_tree_follows_the_schedule_and_live_toggles(window, qtbot, tmp_path):
    folder = make_folder(tmp_path / "big", per_class=40)
    setup_run(window, qtbot, folder, epochs=2, freeze_epochs=1, batch_size=4)
    mt = window.model_tab
    qtbot.waitUntil(lambda: mt.panel.tree is not None and mt.num_classes == 3, timeout=30_000)
    with qtbot.waitSignal(mt.treeBuilt, timeout=30_000):
        mt.rebuild_tree()
    assert mt.freeze_spec == "backbone" and mt.panel.tree.frozen_spec() == "features"
    seen = []
    window.train_tab.phaseChanged.connect(
        lambda e: seen.append((e.message, mt.panel.tree.counts()[0], e.batch)))
    tab = window.train_tab
    batches, finished = [], []
    tab.runFinished.connect(finished.append)  # before start: a fast run cannot slip past
    active = []
    tab.trainingActive.connect(active.append)
    tab.start()
    tab.worker.batchEnd.connect(batches.append)
    qtbot.waitUntil(lambda: len(batches) >= 2, timeout=60_000)
    qt = mt.panel.model
    qt.setData(qt.index_of("features.18"), Qt.Unchecked.value, Qt.CheckStateRole)
    assert mt.freeze_spec == "backbone"  # a live edit does not change the plan
    qtbot.waitUntil(lambda: bool(finished), timeout=120_000)  # recorded from the start
    messages_ = [m for m, _, _ in seen]
    assert "User unfroze features.18" in messages_
    user = seen[messages_.index("User unfroze features.18")]
    assert user[2] >= 2  # applied between batches, after the ones already done
    unfreeze = [s for s in seen if s[0].startswith("Epoch 2: backbone unfrozen")]
    assert unfreeze and unfreeze[0][1] == 0  # the tree showed everything trainable
    assert "User unfroze features.18" in tab.log_view.toPlainText()
    # back to the plan once the run's thread has ended (after runFinished: awaited)
    qtbot.waitUntil(lambda: active[-1:] == [False], timeout=30_000)
    assert mt.panel.tree.frozen_spec() == "features"


def test_tree_edits_before_a_run_become_its_freeze_spec(window, qtbot, image_folder):
    setup_run(window, qtbot, image_folder)
    mt = window.model_tab
    with qtbot.waitSignal(mt.treeBuilt, timeout=30_000):
        mt.rebuild_tree()
    qt = mt.panel.model
    qt.setData(qt.index_of("features.17"), Qt.Unchecked.value, Qt.CheckStateRole)
    qt.setData(qt.index_of("features.18"), Qt.Unchecked.value, Qt.CheckStateRole)
    config = window.build_config()
    assert config.freeze == ",".join(f"features.{i}" for i in range(17))


def test_fast_cpu_preset_carries_its_freeze_plan(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.data_tab.source = "cifar10"
    form = w.train_tab.form
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    config = w.build_config()
    preset = PRESETS["fast-cpu"]
    assert (config.model, config.freeze, config.image_size) == (
        preset["model"], "early,depthwise:5", preset["image_size"])
    assert config.skip_easy == preset["skip_easy"] > 0  # a form field, not dropped
    assert config.backbone_lr_factor == pytest.approx(0.2) and config.scheduler == "cosine"
    assert config.ema == pytest.approx(0.998) and config.tta  # form fields, not dropped


def test_exports_write_files_and_report_unwritable_places(window, qtbot, image_folder, tmp_path,
                                                          monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from core.config import TrainConfig
    from core.training.trainer import Trainer

    run = tmp_path / "run"
    Trainer(TrainConfig(model="mobilenet_v2", weights="none", data=str(image_folder),
                        epochs=1, freeze_epochs=0, image_size=32, batch_size=8),
            run_dir=run).fit()
    window.open_run(str(run))
    target = {"path": str(tmp_path / "out.csv")}
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (target["path"], "CSV (*.csv)"))
    window.train_tab.export_csv()
    assert (tmp_path / "out.csv").read_text().splitlines()[0].startswith("epoch,phase,")
    target["path"] = str(tmp_path / "charts.png")
    window.train_tab.save_charts()
    assert (tmp_path / "charts.png").read_bytes()[:4] == b"\x89PNG"
    target["path"] = str(tmp_path / "out.csv" / "nested.csv")  # a file as the folder
    window.train_tab.export_csv()
    assert any("Cannot write" in m for m in messages(window))
