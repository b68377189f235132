"""Issue 24: what a newcomer hit in the Model and Train tabs (items 4, 8 and 9's status);
the other tabs' items are in test_walkthrough.py. Each test failed on the code before its
fix."""
from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Qt, Signal

from core.config import PRESETS
from core.progress import ProgressEvent
from tests.conftest import make_folder
from tests.test_gui import setup_run

CHECK = Qt.ItemDataRole.CheckStateRole


def waiting_in(state, function: str) -> bool:
    """Whether some thread waits inside ``state.<function>()`` (e.g. a paused run)."""
    for frame in sys._current_frames().values():
        f = frame
        while f is not None:
            if f.f_code.co_name == function and f.f_locals.get("self") is state:
                return True
            f = f.f_back
    return False


# --- item 4: a preset replacing the user's own ticks says so, and can be undone ----------------
def test_a_preset_over_hand_set_ticks_says_so_and_undoes(window, qtbot):
    mt, form, notice = window.model_tab, window.train_tab.form, window.undo_notice

    def tree_of(name: str) -> bool:
        return mt.panel.tree is not None and mt.panel.arch == name and \
            mt.structure_worker is None

    mt.set_model("mobilenet_v2", "none")
    qtbot.waitUntil(lambda: tree_of("mobilenet_v2"), timeout=60_000)
    qt = mt.panel.model
    qt.setData(qt.index_of("features.17"), Qt.CheckState.Unchecked.value, CHECK)  # by hand
    mine = mt.freeze_spec
    assert mt.ticked_by_hand and mine != "backbone"
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    assert not notice.isHidden() and "replaced your own layer ticks" in notice.label.text()
    assert notice.action.isEnabled() and mt.model_name() == PRESETS["fast-cpu"]["model"]
    qtbot.mouseClick(notice.button, Qt.MouseButton.LeftButton)
    assert notice.isHidden() and not notice.action.isEnabled()
    assert (mt.model_name(), mt.freeze_spec, mt.ticked_by_hand) == ("mobilenet_v2", mine, True)
    qtbot.waitUntil(lambda: tree_of("mobilenet_v2") and mt.panel.tree.frozen_spec() == mine,
                    timeout=60_000)
    mt.set_freeze_spec("backbone")  # ticks that came from a plan, not from the user
    form.preset.setCurrentIndex(form.preset.findData("fast-cpu"))
    assert notice.isHidden()


# --- item 8: Pause clicked in the last epoch holds the run -------------------------------------
class _PauseButton(QObject):
    """Clicks Pause in the GUI thread, from the training thread, and waits for the click."""

    clicked = Signal()


def test_a_pause_in_the_last_epoch_holds_the_run(window, qtbot, tmp_path):
    folder = make_folder(tmp_path / "data", classes=2, per_class=8)
    setup_run(window, qtbot, folder, epochs=2, freeze_epochs=1)
    tab = window.train_tab
    button = _PauseButton()
    button.clicked.connect(tab.toggle_pause, Qt.ConnectionType.BlockingQueuedConnection)
    tab.start()
    worker = tab.worker

    def pause_after_the_last_epoch(name, payload):  # in the training thread: after its last
        if name == "epochEnd" and payload.epoch == payload.epochs:  # pause check ran
            button.clicked.emit()  # the GUI has the epoch's end first (queued before)

    worker._runner.event.connect(pause_after_the_last_epoch, Qt.ConnectionType.DirectConnection)
    qtbot.waitUntil(lambda: waiting_in(worker.state, "wait_if_paused"), timeout=120_000)
    assert len(tab.history) == 2 and tab.pause_btn.text() == "Resume"
    assert tab.running and tab.status.text().startswith("Paused after the last epoch")
    with qtbot.waitSignal(tab.runFinished, timeout=30_000) as finished:
        tab.toggle_pause()  # Resume: the run ends as a finished one
    assert finished.args[0].status == "finished" and finished.args[0].epochs_done == 2


# --- item 9: no stale text in the Train tab ----------------------------------------------
def test_the_train_status_moves_on_when_the_run_starts(qtbot):
    from core.events import RunStarted
    from gui.train_tab import TrainTab

    tab = TrainTab(lambda: None)
    qtbot.addWidget(tab)
    tab._on_progress(ProgressEvent("Matching classes to ImageNet", 0, 0))
    tab._on_run_started(RunStarted("run", "m", ["a", "b"], 10, 4, 3, 0, 5, "", ""))
    assert "Matching" not in tab.status.text()
    assert tab.status.text().startswith("Epoch 1/3")
