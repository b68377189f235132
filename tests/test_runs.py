import time

import pytest

from core.frontends.cli import main
from core.runs.listing import _inferred_status, differing_settings, list_runs, summarize
from tests.conftest import make_folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny real runs that differ in learning rate and epochs, plus a non-run folder."""
    tmp = tmp_path_factory.mktemp("runs")
    folder = make_folder(tmp / "shapes", classes=2, per_class=8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(tmp / "home"))
        mp.setenv("TRANSFERLAB_OFFLINE", "1")
        for name, lr, epochs in (("run-a", "0.001", "1"), ("run-b", "0.01", "2")):
            assert main(["train", "--model", "mobilenet_v2", "--weights", "none", "--data",
                         str(folder), "--epochs", epochs, "--freeze-epochs", "0",
                         "--image-size", "32", "--batch-size", "8", "--lr", lr,
                         "--out", str(tmp / "all" / name)]) == 0
    (tmp / "all" / "not-a-run").mkdir()
    return tmp / "all"


def test_summaries_of_real_runs(runs):
    found = {r.name: r for r in list_runs([runs])}
    assert sorted(found) == ["run-a", "run-b"]
    a, b = found["run-a"], found["run-b"]
    assert (a.model, a.data, a.epochs, a.planned_epochs) == ("mobilenet_v2", "shapes", 1, 1)
    assert b.epochs == 2 and len(b.history) == 2 and b.wall_s > 0
    assert b.best_val_acc == max(h["val_acc"] for h in b.history)
    assert a.status == b.status == "finished"
    assert differing_settings([a, b]) == {"epochs": [1, 2], "lr": [0.001, 0.01]}
    # a run older than status.json, stopped after 1 of 3 planned epochs: guessed from files
    a.planned_epochs = 3
    assert _inferred_status(a, last_write=time.time() - 3600, now=time.time()) == "stopped"
    assert _inferred_status(a, last_write=time.time(), now=time.time()) == "running"
    assert summarize(runs / "not-a-run") is None


def test_runs_view_lists_and_overlays_two_runs(qtbot, runs):
    from PySide6.QtCore import QItemSelectionModel, Qt

    from gui.runs_view import RunsView

    view = RunsView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.listed, timeout=30_000) as listed:
        view.set_roots([str(runs)])
    assert listed.args == [2] and view.proxy.rowCount() == 2
    view.filter.setText("run-b")
    assert view.proxy.rowCount() == 1
    view.filter.setText("")
    view.table.sortByColumn(0, Qt.DescendingOrder)
    assert view.proxy.index(0, 0).data() == "run-b"
    with qtbot.waitSignal(view.compared) as compared:
        view.table.selectAll()
    assert sorted(compared.args[0]) == ["run-a", "run-b"]
    assert sorted(view.comparison.curve_names()) == ["run-a", "run-b"]
    curves = {c.name(): c.getData()[0].tolist() for c in view.comparison.acc_plot.listDataItems()}
    assert curves == {"run-a": [1], "run-b": [1, 2]}
    diff = view.comparison.diff
    rows = [diff.verticalHeaderItem(i).text() for i in range(diff.rowCount())]
    assert rows == ["epochs", "lr"]
    view.table.selectionModel().select(view.proxy.index(0, 0), QItemSelectionModel.Deselect
                                       | QItemSelectionModel.Rows)
    assert view.comparison.curve_names() == ["run-a"] and view.comparison.diff.rowCount() == 0


def test_compared_curves_are_labelled_in_whole_epochs(qtbot):
    """A run's rows are per epoch: the compare charts label 1, 2, 3, never 1.5."""
    from gui.run_compare import EpochAxis

    axis = EpochAxis("bottom")
    assert axis.tickValues(0.8, 4.2, 400) == [(1, [1.0, 2.0, 3.0, 4.0])]
    (step, values), = axis.tickValues(1, 60, 400)
    assert step == 8 and values[0] == 1 and len(values) <= 8

