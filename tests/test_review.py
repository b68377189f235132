"""The review journal and session: changes that never lose a file (core.review)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from core.errors import TransferLabError
from core.review import journal as J
from core.review.moves import move_no_replace, settle
from core.review.session import ReviewSession
from tests.conftest import COLORS, REPO, make_image


def snapshot(root: Path) -> dict[str, bytes]:
    """Every visible file under ``root`` (the review folder left out): name -> bytes."""
    out = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(J.REVIEW_DIR):
            out[rel] = path.read_bytes()
    return out


@pytest.fixture
def folder(tmp_path) -> Path:
    """class_0/000-003.jpg and class_1/100-103.jpg (no name in both)."""
    root = tmp_path / "pets"
    for c in range(2):
        for i in range(4):
            make_image(root / f"class_{c}" / f"{100 * c + i:03d}.jpg", COLORS[c], seed=10 * c + i)
    return root


def test_relabel_remove_undo_redo_restore_the_exact_files(folder):
    before = snapshot(folder)
    s = ReviewSession(folder)
    s.relabel([("class_0/001.jpg", "class_0", "class_1")])
    s.remove(["class_1/102.jpg", "class_0/003.jpg"])
    after = snapshot(folder)
    assert after["class_1/001.jpg"] == before["class_0/001.jpg"]
    assert "class_0/001.jpg" not in after and "class_1/102.jpg" not in after
    from core.data.folder import list_files  # the lister never sees the quarantine
    listed = {p.relative_to(folder).as_posix() for p, _ in list_files(folder, ["class_0",
                                                                               "class_1"])}
    assert listed == set(after)
    assert s.undo_label == "Remove 2 images"
    s.undo()
    s.close()
    s = ReviewSession(folder)  # undo and redo carry across restarts
    assert s.undo_label.startswith("Relabel 1 image") and s.redo_label == "Remove 2 images"
    s.undo()
    assert snapshot(folder) == before
    s.redo()
    s.redo()
    assert snapshot(folder) == after
    s.undo()
    s.undo()
    assert snapshot(folder) == before
    assert s.undo() is None


def test_a_new_change_clears_redo_and_the_state_id_follows_the_files(folder):
    assert J.journal_state(folder) is None  # never reviewed
    s = ReviewSession(folder)
    s.relabel([("class_0/000.jpg", "class_0", "class_1")])
    first = J.journal_state(folder)
    assert first.startswith("review-1-")
    s.keep(["label:class_0/002.jpg"])
    assert J.journal_state(folder) == first  # keeping moves nothing
    assert s.kept == {"label:class_0/002.jpg"}
    s.undo()
    assert s.kept == set()
    s.undo()
    assert J.journal_state(folder) == "review-0"
    s.remove(["class_1/100.jpg"])
    assert s.redo_label == "" and J.journal_state(folder) not in (first, "review-0")


def test_a_name_collision_is_refused_and_nothing_moves(folder):
    (folder / "class_1" / "001.jpg").write_bytes(b"another photo")
    before = snapshot(folder)
    s = ReviewSession(folder)
    with pytest.raises(TransferLabError, match="already exists.*never replaces"):
        s.relabel([("class_0/000.jpg", "class_0", "class_1"),
                   ("class_0/001.jpg", "class_0", "class_1")])
    assert snapshot(folder) == before
    with pytest.raises(FileExistsError):
        move_no_replace(folder / "class_0/001.jpg", folder / "class_1/001.jpg")
    assert snapshot(folder) == before
    s.relabel([("class_0/001.jpg", "class_0", "class_1")], new_names=True)  # when asked to
    after = snapshot(folder)
    assert after["class_1/001-2.jpg"] == before["class_0/001.jpg"]
    assert after["class_1/001.jpg"] == b"another photo"


def test_a_failed_move_puts_back_the_ones_done(folder, request):
    """The second file lives on another disk (a class folder linked to /dev/shm): moving it
    into the quarantine fails for real, and the first move is put back."""
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == folder.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the temp folder")
    elsewhere = Path(tempfile.mkdtemp(dir=other))
    request.addfinalizer(lambda: shutil.rmtree(elsewhere))
    shutil.move(folder / "class_1" / "100.jpg", elsewhere / "100.jpg")
    (folder / "class_1" / "far").symlink_to(elsewhere)
    before = snapshot(folder)
    s = ReviewSession(folder)
    with pytest.raises(TransferLabError, match="Could not move 100.jpg.*Nothing was changed"):
        s.remove(["class_0/000.jpg", "class_1/far/100.jpg"])
    assert snapshot(folder) == before
    assert s.state.pending is None and s.state.done == []
    assert J.read(folder).count == 1  # begun, then aborted: on record


def test_a_read_only_dataset_is_reviewed_read_only_with_a_message(folder):
    before = snapshot(folder)
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        s = ReviewSession(folder)
        assert "read-only" in s.read_only
        with pytest.raises(TransferLabError, match="reviewed read-only: .*read-only"):
            s.remove(["class_0/000.jpg"])
    finally:
        os.chmod(folder, 0o755)
    assert snapshot(folder) == before
    assert not (folder / J.REVIEW_DIR).exists()


def test_a_second_window_reviews_read_only(folder):
    first = ReviewSession(folder)
    second = ReviewSession(folder)
    assert "another TransferLab window" in second.read_only
    first.close()
    assert ReviewSession(folder).read_only == ""


KILL = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {repo!r})
    import core.review.session as S
    import core.review.moves as M
    calls = []
    real_move, real_unlink = S.move_no_replace, M.os.unlink
    def move(src, dst):
        calls.append(src)
        if len(calls) == {after} + 1 and {mid_link}:
            M._renameat2 = None  # the link-then-unlink way: killed between the two
            M.os.unlink = lambda p: os._exit(9)
        elif len(calls) == {after} + 1:
            os._exit(9)  # killed before this move
        real_move(src, dst)
    S.move_no_replace = move
    s = S.ReviewSession({root!r})
    s.relabel([(f"class_0/{{i:03d}}.jpg", "class_0", "class_1") for i in range(4)])
""")


@pytest.mark.parametrize("mid_link", [False, True])
def test_a_killed_move_is_settled_on_the_next_opening(folder, mid_link):
    before = snapshot(folder)
    code = KILL.format(repo=str(REPO), root=str(folder), after=2, mid_link=mid_link)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 9, proc.stderr
    state = J.read(folder)
    assert state.pending is not None and state.done == []  # the journal knows
    moved = [f"class_0/{i:03d}.jpg" for i in range(4)]
    s = ReviewSession(folder)
    assert s.recovered.startswith("Finished a change that was interrupted")
    after = snapshot(folder)
    assert not any(m in after for m in moved)
    for m in moved:
        assert after[m.replace("class_0", "class_1")] == before[m]
    assert len(after) == len(before)  # no file lost, none doubled
    assert s.state.pending is None and len(s.state.done) == 1
    s.undo()
    assert snapshot(folder) == before


def test_an_interrupted_change_that_cannot_finish_is_put_back(folder):
    before = snapshot(folder)
    s = ReviewSession(folder)
    t = J.Transaction(J.next_id(s.state), "relabel",
                      (("class_0/000.jpg", "class_1/000x.jpg"),
                       ("class_0/001.jpg", "class_1/001x.jpg")), (), "Relabel 2", "", J.now())
    J.append(folder, t.record())
    move_no_replace(folder / "class_0/000.jpg", folder / "class_1/000x.jpg")
    (folder / "class_1/001x.jpg").write_bytes(b"appeared meanwhile")  # the second is blocked
    s.close()
    s = ReviewSession(folder)
    assert s.recovered.startswith("Put back")
    assert snapshot(folder) == dict(before, **{"class_1/001x.jpg": b"appeared meanwhile"})
    assert s.state.pending is None and s.state.done == []


def test_settle_completes_a_half_done_link(tmp_path):
    src, dst = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(b"x")
    os.link(src, dst)
    assert settle(src, dst) == "done" and not src.exists() and dst.read_bytes() == b"x"


def test_a_torn_last_line_is_ignored_and_the_next_record_starts_afresh(folder):
    s = ReviewSession(folder)
    s.keep(["outlier:class_0/000.jpg"])
    with open(J.journal_path(folder), "ab") as f:
        f.write(b'{"v": 1, "op": "begin", "id": "000')
    assert J.read(folder).kept == {"outlier:class_0/000.jpg"}
    s.keep(["outlier:class_0/001.jpg"])
    assert J.read(folder).kept == {"outlier:class_0/000.jpg", "outlier:class_0/001.jpg"}


def test_the_next_run_loads_the_cleaned_set(folder):
    """The decoded cache is keyed by the files' paths: a relabel or a removal is a new key."""
    from core.data.datasets import load_dataset

    def counts():
        ds = load_dataset(str(folder), 32, val_split=0.25)
        both = [ds.class_counts(ds.train), ds.class_counts(ds.val)]
        return {c: sum(d[c] for d in both) for c in ds.classes}

    assert counts() == {"class_0": 4, "class_1": 4}
    s = ReviewSession(folder)
    s.relabel([("class_0/000.jpg", "class_0", "class_1")])
    s.remove(["class_1/100.jpg"])
    assert counts() == {"class_0": 3, "class_1": 4}
    s.undo()
    assert counts() == {"class_0": 3, "class_1": 5}


def test_the_journal_state_is_read_without_torch(folder):
    """What a run records with its data (core.review.journal.journal_state) needs no torch."""
    ReviewSession(folder).remove(["class_0/000.jpg"])
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
            f"from core.review.journal import journal_state; "
            f"print(journal_state({str(folder)!r}), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out == [J.journal_state(folder), "False"] and out[0].startswith("review-1-")
