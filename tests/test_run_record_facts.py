"""What a run records when it starts, besides its settings: the review journal state its data
folder had (split.json, issue 21) and the tuner's speed choices (decisions.json, issue 23).
A resume keeps both and says when the data was reviewed since; ``runs --json`` and the Runs
view's compare table show them; runs older than either read as None / {}."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.events import EventCollector, LogLine
from core.frontends.cli import main
from core.review.journal import journal_state
from core.review.session import ReviewSession
from core.runs import RunRecord, layout
from core.runs.listing import REVIEW_ROW, SPEED_ROW, differing, speed_choices, summarize
from core.runs.split import SplitRecord, _digest
from core.training.trainer import Trainer
from tests.conftest import clone_run, make_folder, tiny_config


def _relabel(data: Path, rel: str, given: str, new: str) -> None:
    session = ReviewSession(data)
    try:
        session.relabel([(rel, given, new)], new_names=True)  # (000.jpg is in both)
    finally:
        session.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny real runs in one folder: "reviewed" on a folder where the Review moved one
    image to another class, "plain" on a folder never reviewed, with another micro-batch
    (a speed choice the tuner takes as given). Returns (runs folder, reviewed data)."""
    tmp = tmp_path_factory.mktemp("facts")
    reviewed = make_folder(tmp / "reviewed-data", classes=2, per_class=8)
    plain = make_folder(tmp / "plain-data", classes=2, per_class=8)
    _relabel(reviewed, "class_0/000.jpg", "class_0", "class_1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFERLAB_HOME", str(tmp / "home"))
        mp.setenv("TRANSFERLAB_OFFLINE", "1")
        for name, data, micro in (("reviewed", reviewed, 16), ("plain", plain, 4)):
            cfg = tiny_config(data, epochs=1, freeze_epochs=0, micro_batch=micro)
            assert Trainer(cfg, run_dir=tmp / "runs" / name).fit().status == "finished"
    return tmp / "runs", reviewed


def test_a_run_records_the_review_state_its_data_had(runs):
    root, data = runs
    state = journal_state(data)
    assert state is not None and state.startswith("review-1-")
    record = RunRecord(root / "reviewed")
    assert record.review_state == state
    saved = json.loads((root / "reviewed" / layout.SPLIT_FILE).read_text())
    assert (saved["version"], saved["review"]) == (2, state)
    assert RunRecord(root / "plain").review_state is None  # never reviewed
    assert record.decisions and speed_choices(record.decisions)["micro_batch"] == "16"
    assert speed_choices(RunRecord(root / "plain").decisions)["micro_batch"] == "4"


def test_runs_json_lists_the_review_state_and_the_speed_choices(runs, capsys):
    root, data = runs
    assert main(["runs", "--json", str(root)]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["reviewed"]["review_state"] == journal_state(data)
    assert listed["plain"]["review_state"] is None
    for name in ("reviewed", "plain"):
        assert listed[name]["decisions"] == RunRecord(root / name).decisions != {}


def test_an_older_run_without_them_reads(runs, tmp_path):
    """A run made before split.json had "review" (version 1) and before decisions.json."""
    run = Path(shutil.copytree(runs[0] / "reviewed", tmp_path / "old"))
    (run / layout.DECISIONS_FILE).unlink()
    saved = json.loads((run / layout.SPLIT_FILE).read_text())
    body = {k: v for k, v in saved.items()
            if k not in ("format", "version", "counts", "sha256", "review")}
    (run / layout.SPLIT_FILE).write_text(json.dumps(
        {"format": saved["format"], "version": 1, "counts": saved["counts"], **body,
         "sha256": _digest(body)}))
    record = RunRecord(run)
    assert (record.review_state, record.decisions) == (None, {})
    assert record.split.assignment().count("val") == 4
    assert not record.split.check(runs[1]).review  # nothing recorded: nothing to compare
    summary = summarize(run)
    assert (summary.review_state, summary.decisions) == (None, {})


def test_a_resume_keeps_the_recorded_state_and_says_the_data_was_reviewed_since(runs,
                                                                                tmp_path):
    run, data = clone_run(runs[0] / "reviewed", tmp_path)
    recorded = RunRecord(run).review_state
    assert journal_state(data) == recorded  # (the copy carries the journal)
    _relabel(data, "class_1/001.jpg", "class_1", "class_0")
    now = journal_state(data)
    assert now not in (None, recorded)
    events = EventCollector()
    cfg = tiny_config(data, epochs=2, freeze_epochs=0, micro_batch=16)
    assert Trainer(cfg, [events], run_dir=run, resume=True).fit().status == "finished"
    notes = [e.message for e in events.of(LogLine) if "review journal moved on" in e.message]
    assert len(notes) == 1 and f"then {recorded}, now {now}" in notes[0]
    assert RunRecord(run).review_state == recorded  # a resume keeps what was recorded


def test_the_compare_table_shows_a_differing_review_state_and_speed_choice(qtbot, runs):
    from gui.runs_view import RunsView

    root, data = runs
    view = RunsView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.listed, timeout=30_000):
        view.set_roots([str(root)])
    with qtbot.waitSignal(view.compared):
        view.table.selectAll()
    diff = view.comparison.diff
    names = [diff.horizontalHeaderItem(c).text() for c in range(diff.columnCount())]
    rows = {diff.verticalHeaderItem(r).text(): r for r in range(diff.rowCount())}
    assert REVIEW_ROW in rows and SPEED_ROW.format("micro_batch") in rows

    def cell(row: str, run: str) -> str:
        return diff.item(rows[row], names.index(run)).text()

    assert (cell(REVIEW_ROW, "reviewed"), cell(REVIEW_ROW, "plain")) == \
        (journal_state(data), "—")
    assert (cell(SPEED_ROW.format("micro_batch"), "reviewed"),
            cell(SPEED_ROW.format("micro_batch"), "plain")) == ("16", "4")
    assert SPEED_ROW.format("channels_last") not in rows  # the same choice: no row
    assert set(differing(view.runs)) == set(rows)
