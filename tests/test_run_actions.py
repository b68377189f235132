"""What a user does to a run after it ends: its recorded status, a label instead of its
folder's name, deleting it (never a folder that is not a run), and resuming it from the Runs
view with the charts as one continuous history."""
import json
import os
import subprocess
import sys

import pytest

from core.errors import TransferLabError
from core.events import Callback
from core.progress import TaskState
from core.runs.files import read_metrics, read_status, set_label, write_status
from core.runs.listing import summarize
from core.runs.store import delete_run
from core.training.trainer import Trainer
from tests.conftest import make_folder, tiny_config


class StopAfter(Callback):
    """Presses Stop when epoch ``n`` has ended (as the GUI's Stop button does)."""

    def __init__(self, n: int):
        self.n, self.state = n, None

    def on_epoch_end(self, e):
        if e.epoch == self.n:
            self.state.cancel()


class Boom(Callback):
    def on_epoch_end(self, e):
        raise RuntimeError("the disk went away")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data") / "shapes", classes=2, per_class=8)


def _stopped_run(folder, run, epochs=3):
    stop, state = StopAfter(1), TaskState()
    stop.state = state
    return Trainer(tiny_config(folder, epochs=epochs), [stop], state, run).fit()


def test_the_engine_records_finished_stopped_and_failed(folder, tmp_path):
    Trainer(tiny_config(folder, epochs=1), run_dir=tmp_path / "done").fit()
    assert read_status(tmp_path / "done")["status"] == "finished"
    assert read_status(tmp_path / "done")["epochs_done"] == 1

    assert _stopped_run(folder, tmp_path / "stopped").status == "stopped"
    record = read_status(tmp_path / "stopped")
    assert (record["status"], record["epochs_done"]) == ("stopped", 1)
    assert summarize(tmp_path / "stopped").status_message == "Stopped by the user."

    with pytest.raises(RuntimeError):
        Trainer(tiny_config(folder, epochs=2), [Boom()], run_dir=tmp_path / "failed").fit()
    failed = summarize(tmp_path / "failed")
    assert (failed.status, failed.status_message) == ("failed", "the disk went away")


def test_a_running_record_whose_process_is_gone_reads_as_failed(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "mobilenet_v2", "data": "d"}))
    write_status(tmp_path, "running", 0)
    assert read_status(tmp_path)["status"] == "running"  # this process: alive
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    record = json.loads((tmp_path / "status.json").read_text())
    record["pid"] = int(gone.stdout)
    (tmp_path / "status.json").write_text(json.dumps(record))
    assert read_status(tmp_path)["status"] == "failed"
    record["host"] = "another-machine"  # a torchrun node elsewhere: cannot check, believed
    (tmp_path / "status.json").write_text(json.dumps(record))
    assert read_status(tmp_path)["status"] == "running"


def test_a_label_renames_the_run_in_the_list_not_its_folder(folder, tmp_path):
    run = tmp_path / "20261129-run"
    Trainer(tiny_config(folder, epochs=1), run_dir=run).fit()
    set_label(run, "  baseline,\n lr 1e-3 ")
    assert summarize(run).name == "baseline, lr 1e-3" and run.is_dir()
    set_label(run, "")
    assert summarize(run).name == "20261129-run"
    with pytest.raises(TransferLabError, match="not a TransferLab run"):
        set_label(tmp_path, "x")


def test_delete_removes_a_run_and_nothing_else(folder, tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_config(folder, epochs=1), run_dir=run).fit()
    (run / "evaluation-val.csv").write_text("path\n")
    (run / "my notes.txt").write_text("mine")
    (run / "exports").mkdir()
    assert delete_run(run) == ["exports", "my notes.txt"]
    assert sorted(p.name for p in run.iterdir()) == ["exports", "my notes.txt"]
    assert summarize(run) is None

    Trainer(tiny_config(folder, epochs=1), run_dir=tmp_path / "plain").fit()
    assert delete_run(tmp_path / "plain") == [] and not (tmp_path / "plain").exists()


def test_delete_refuses_a_folder_that_is_not_a_run_and_a_live_run(tmp_path):
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "model.pt").write_text("a file named like a run's")
    (home / "config.json").write_text('{"theme": "dark"}')  # someone else's config.json
    with pytest.raises(TransferLabError, match="not a TransferLab run folder"):
        delete_run(home)
    # even one whose keys look like ours, without the files only a run writes
    (home / "config.json").write_text('{"model": "resnet18", "data": "photos"}')
    with pytest.raises(TransferLabError, match="not a TransferLab run folder"):
        delete_run(home)
    assert sorted(p.name for p in home.iterdir()) == ["Documents", "config.json", "model.pt"]

    live = tmp_path / "live"
    live.mkdir()
    (live / "config.json").write_text(json.dumps({"model": "mobilenet_v2", "data": "d"}))
    write_status(live, "running", 1)  # by this process, which is alive
    with pytest.raises(TransferLabError, match="still training"):
        delete_run(live)
    assert (live / "config.json").exists()


def test_a_running_record_silent_for_hours_reads_as_failed(tmp_path):
    """(A second writer is kept out by the run's lock: tests/test_run_lock.py.)"""
    (tmp_path / "config.json").write_text(json.dumps({"model": "mobilenet_v2", "data": "d"}))
    write_status(tmp_path, "running", 1)
    record = json.loads((tmp_path / "status.json").read_text())
    # a record nobody has rewritten for hours (another host, or Windows): dead
    (tmp_path / "status.json").write_text(json.dumps(dict(record, host="elsewhere", updated=0)))
    assert read_status(tmp_path)["status"] == "failed"


@pytest.fixture
def two_runs(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    runs = tmp_path / "runs"
    Trainer(tiny_config(folder, epochs=1), run_dir=runs / "a-finished").fit()
    _stopped_run(folder, runs / "b-stopped")
    return runs


def _listed(qtbot, view, roots):
    with qtbot.waitSignal(view.listed, timeout=30_000):
        view.set_roots(roots) if roots else view.refresh()
    return {view.proxy.index(i, 0).data(): view.proxy.index(i, 7).data()
            for i in range(view.proxy.rowCount())}


def _select(view, name):
    from PySide6.QtCore import QItemSelectionModel

    row = next(i for i in range(view.proxy.rowCount()) if view.proxy.index(i, 0).data() == name)
    view.table.selectionModel().select(view.proxy.index(row, 0), QItemSelectionModel.ClearAndSelect
                                       | QItemSelectionModel.Rows)


def test_runs_view_shows_recorded_status_renames_and_deletes(qtbot, two_runs):
    from PySide6.QtWidgets import QMessageBox

    from gui.runs_view import RunsView

    view = RunsView()
    qtbot.addWidget(view)
    assert _listed(qtbot, view, [str(two_runs)]) == {"a-finished": "finished",
                                                   "b-stopped": "stopped"}
    _select(view, "b-stopped")
    enabled = {k: b.isEnabled() for k, b in view.actions.items()}
    assert enabled == dict(open=True, resume=True, evaluate=True, export=True, rename=True,
                           delete=True)
    with qtbot.waitSignal(view.listed, timeout=30_000):
        view.set_label(str(two_runs / "b-stopped"), "my best try")
    assert set(_listed(qtbot, view, None)) == {"a-finished", "my best try"}
    assert (two_runs / "b-stopped").is_dir()

    (two_runs / "a-finished" / "keep.txt").write_text("mine")
    _select(view, "a-finished")
    view.delete()  # asks first
    assert view._confirm is not None and "a-finished" in view._confirm.text()
    view._confirm.reject()  # Cancel: nothing happens
    assert (two_runs / "a-finished" / "model.pt").exists()
    view.delete()
    with qtbot.waitSignal(view.listed, timeout=30_000):
        view._confirm.button(QMessageBox.Yes).click()
    assert "kept 1 other file there (keep.txt)" in view.message.text()
    assert os.listdir(two_runs / "a-finished") == ["keep.txt"]
    assert set(_listed(qtbot, view, None)) == {"my best try"}


def test_resume_from_the_runs_view_continues_one_history(qtbot, window, two_runs):
    run = str(two_runs / "b-stopped")
    window.runs_view.resumeRequested.emit(run)
    tab = window.train_tab
    assert window.tabs.currentIndex() == 2 and tab.running
    assert list(tab.charts.curves["val_acc"].getData()[0]) == [1.0]  # the epoch it had
    with qtbot.waitSignal(tab.runFinished, timeout=120_000) as done:
        pass
    assert done.args[0].status == "finished"
    assert [h["epoch"] for h in tab.history] == [1, 2, 3]
    assert list(tab.charts.curves["val_acc"].getData()[0]) == [1.0, 2.0, 3.0]
    assert [h["epoch"] for h in read_metrics(run)] == [1, 2, 3]
    assert read_status(run)["status"] == "finished"
    assert "Resuming" in tab.log_view.toPlainText()
