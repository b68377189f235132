"""The GUI never waits for a worker: stale tasks are cancelled and detached, models are built
in a worker, the Data tab counts without decoding, and closing mid-task is clean."""
from __future__ import annotations

import os
import threading

import torch
from PySide6.QtWidgets import QMessageBox

from core.data.datasets import load_dataset
from core.frontends import qt_worker
from core.frontends.qt_worker import TaskWorker
from tests.conftest import make_folder


def on_gui_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def wait_all_ended(qtbot, timeout=30_000):
    qtbot.waitUntil(lambda: not qt_worker.live_workers(), timeout=timeout)


# --- TaskWorker: cancel and detach ------------------------------------------------------------
def test_stop_returns_at_once_and_a_stale_result_never_arrives(qtbot):
    release = threading.Event()
    results, threads = [], []
    old = TaskWorker(lambda _s: release.wait(60) and "stale")  # like Grad-CAM: no checks
    old.done.connect(results.append)
    old.start()
    qtbot.waitUntil(old.thread.isRunning, timeout=5_000)
    old.stop()
    assert old.thread.isRunning()  # stop() did not wait for it
    new = TaskWorker(lambda _s: "fresh")
    new.done.connect(lambda r: (results.append(r), threads.append(on_gui_thread())))
    with qtbot.waitSignal(new.done, timeout=10_000):
        new.start()
    release.set()
    old_thread = old.thread
    del old  # only the registry keeps it alive now: no "destroyed while running" abort
    qtbot.waitUntil(lambda: old_thread.isFinished(), timeout=10_000)
    wait_all_ended(qtbot)
    assert results == ["fresh"] and threads == [True]


def test_cancelled_task_stops_at_its_next_check(qtbot):
    reached = threading.Event()
    steps = []

    def task(state):
        while True:
            reached.set()
            state.check()
            steps.append(1)

    w = TaskWorker(task)
    failed = []
    w.failed.connect(failed.append)
    w.start()
    qtbot.waitUntil(reached.is_set, timeout=5_000)
    w.stop()
    qtbot.waitUntil(w.thread.isFinished, timeout=10_000)
    assert failed == []  # detached: not even its "Cancelled." reaches a receiver
    wait_all_ended(qtbot)


def test_shutdown_all_waits_bounded_and_reports_what_still_runs(qtbot):
    release = threading.Event()
    w = TaskWorker(lambda _s: release.wait(60))
    w.start()
    qtbot.waitUntil(w.thread.isRunning, timeout=5_000)
    assert qt_worker.shutdown_all(timeout_ms=50) is False  # bounded: it gave up waiting
    assert w in qt_worker.live_workers()
    release.set()
    assert qt_worker.shutdown_all(timeout_ms=10_000) is True
    assert w not in qt_worker.live_workers()


# --- Model tab --------------------------------------------------------------------------------
def test_model_changes_build_in_a_worker_and_stale_builds_are_dropped(window, qtbot,
                                                                    monkeypatch):
    from core.models import registry

    built_on_gui = []
    real = registry.build_architecture
    monkeypatch.setattr(registry, "build_architecture",
                        lambda spec, *a: (built_on_gui.append(on_gui_thread()), real(spec, *a))[1])
    mt = window.model_tab
    qtbot.waitUntil(lambda: mt.panel.tree is not None and mt.structure_worker is None,
                    timeout=60_000)
    trees = []
    mt.treeBuilt.connect(lambda: trees.append(mt.panel.arch))
    for name in ("resnet18", "efficientnet_lite0", "mobilenet_v2", "efficientnet_lite0"):
        mt.set_model(name, "none")
        mt.rebuild_tree()  # start each build at once, so three go stale while running
        assert not mt.tree_box.isEnabled()  # busy: the old tree cannot be edited
        assert "Building" in mt.panel.summary.text()
    wait_all_ended(qtbot, 60_000)
    qtbot.waitUntil(lambda: bool(trees), timeout=10_000)
    assert trees == ["efficientnet_lite0"]  # only the last build landed
    assert built_on_gui and not any(built_on_gui)
    assert mt.tree_box.isEnabled()
    assert "ImageNet input 224 px" in mt.info.text()  # Lite0's, found by the worker


# --- Data tab ---------------------------------------------------------------------------------
def test_data_tab_counts_by_listing_and_decodes_only_the_samples(window, qtbot, tmp_path,
                                                                 monkeypatch):
    from core.data import summary

    folder = make_folder(tmp_path / "many", classes=3, per_class=30, size=(32, 32))
    (folder / "class_2" / "notes.jpg").write_text("not a picture")
    decoded = []
    real = summary.load_square
    monkeypatch.setattr(summary, "load_square",
                        lambda path, size: (decoded.append(path), real(path, size))[1])
    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000) as blocker:
        window.data_tab.set_source(str(folder))
    shown = blocker.args[0]
    assert len(decoded) == 3 * 8  # the samples on screen, not the 90 images
    trained = load_dataset(str(folder), 32)  # what training will see
    table = window.data_tab.table
    for row, name in enumerate(trained.classes):
        assert int(table.item(row, 1).text()) == trained.class_counts(trained.train)[name]
        assert int(table.item(row, 2).text()) == trained.class_counts(trained.val)[name]
    assert "notes.jpg: not an image" in window.data_tab.skipped.toPlainText()
    assert sum(len(v) for v in shown.samples.values()) == 3 * 8  # all the tab keeps decoded


def test_a_new_source_drops_the_scan_of_the_old_one(window, qtbot, tmp_path):
    first = make_folder(tmp_path / "first", classes=2, per_class=30, size=(32, 32))
    second = make_folder(tmp_path / "second", classes=4, per_class=5, size=(32, 32))
    tab = window.data_tab
    seen = []
    tab.scanned.connect(lambda s: seen.append(len(s.classes)))
    tab.set_source(str(first))
    tab.set_source(str(second))  # no wait for the first scan: it is detached
    wait_all_ended(qtbot)
    assert seen == [4]


# --- closing mid-task -------------------------------------------------------------------------
def close_now(window, monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    assert window.close()
    assert not qt_worker.live_workers()  # every thread ended inside close, none left behind


def test_closing_mid_training_keeps_the_last_checkpoint(window, qtbot, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "d", classes=2, per_class=40, size=(32, 32))
    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000):
        window.data_tab.set_source(str(folder))
    window.model_tab.set_model("mobilenet_v2", "none")
    window.train_tab.form.set_values(dict(epochs=50, freeze_epochs=1, image_size=32,
                                          batch_size=4, val_split=0.25))
    tab = window.train_tab
    tab.start()
    epochs = []
    tab.worker.epochEnd.connect(epochs.append)
    qtbot.waitUntil(lambda: bool(epochs), timeout=120_000)
    close_now(window, monkeypatch)
    assert len(epochs) < 50
    ck = torch.load(os.path.join(tab.last_run_dir, "checkpoint.pt"), weights_only=True)
    assert len(ck["history"]) >= 1 and ck["epoch"] == len(ck["history"]) - 1  # 0-based
    assert not [p for p in os.listdir(tab.last_run_dir) if p.endswith(".tmp")]


def test_closing_while_training_decodes_its_data(window, qtbot, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "d", classes=2, per_class=400, size=(32, 32))
    with qtbot.waitSignal(window.data_tab.scanned, timeout=60_000):
        window.data_tab.set_source(str(folder))
    window.model_tab.set_model("mobilenet_v2", "none")
    window.train_tab.form.set_values(dict(epochs=2, freeze_epochs=1, image_size=32,
                                          batch_size=8))
    stages = []
    window.train_tab.start()
    window.train_tab.worker.progress.connect(lambda e: stages.append(e.stage))
    qtbot.waitUntil(lambda: any(s.startswith("Decoding") for s in stages), timeout=60_000)
    close_now(window, monkeypatch)


def test_closing_during_inference_of_many_images(window, qtbot, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "drop", classes=1, per_class=300, size=(32, 32))
    tab = window.inference_tab
    qtbot.waitUntil(lambda: tab.lm is not None, timeout=60_000)
    rows = []
    tab.table_model.rowsInserted.connect(lambda *a: rows.append(1))
    tab.predict([str(folder)])
    qtbot.waitUntil(lambda: bool(rows), timeout=60_000)
    close_now(window, monkeypatch)
    assert tab.table_model.rowCount() < 300


def test_closing_during_a_download_leaves_no_partial_file(window, qtbot, tmp_path,
                                                         monkeypatch):
    """CIFAR-10 'downloads' from a FIFO that a thread feeds slowly: the worker is mid-download
    for as long as the test likes, with no network."""
    import torchvision.datasets as tvd

    from core.data.cifar import cifar_root

    fifo = tmp_path / "cifar.fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(tvd.CIFAR10, "url", fifo.as_uri())
    stop = threading.Event()

    def feed():
        with open(fifo, "wb") as out:
            try:
                while not stop.is_set():
                    out.write(b"\0" * 65536)
                    out.flush()
                    stop.wait(0.005)
            except BrokenPipeError:  # the cancelled download closed its end: expected
                pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    stages = []
    window.data_tab.set_source("cifar10")
    window.data_tab.worker.progress.connect(lambda e: stages.append(e))
    qtbot.waitUntil(lambda: any(e.done > 0 for e in stages), timeout=30_000)
    try:
        close_now(window, monkeypatch)
    finally:
        stop.set()
        feeder.join(10)
    assert stages[-1].stage.startswith("Downloading")
    assert not cifar_root().exists() or not list(cifar_root().rglob("*"))  # no partial file


# --- the Qt binding itself --------------------------------------------------------------------
def test_void_qt_calls_keep_references_to_none():
    """PySide6 6.12.0 on Python 3.11 dropped a reference to None on every Qt call that returns
    nothing: a long GUI session deallocated None and the interpreter aborted. requirements.txt
    pins 6.11.3; this fails if a bump brings the leak back."""
    import sys

    from PySide6.QtCore import QObject

    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(1000):
        obj.setObjectName("x")
    assert before - sys.getrefcount(None) < 100
