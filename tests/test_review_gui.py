"""The data doctor in the window: Check on the Data tab -> Review -> relabel -> undo, by
keyboard, with the Data tab's counts following the files; and the map's lasso."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.test_doctor import planted


def counts(tab) -> dict[str, int]:
    return {tab.table.item(r, 0).text(): int(tab.table.item(r, 1).text())
            for r in range(tab.table.rowCount())}


def test_check_review_relabel_undo(window, qtbot, tmp_path):
    root = tmp_path / "colours"
    p = planted(root)
    data, review = window.data_tab, window.review_tab
    with qtbot.waitSignal(data.scanned, timeout=60_000):
        data.set_source(str(root))
    before = counts(data)
    with qtbot.waitSignal(review.checked, timeout=300_000):
        qtbot.mouseClick(data.check_btn, Qt.LeftButton)
    assert window.tabs.currentWidget() is review
    assert "in the wrong class" in review.headline.text()
    assert "in both train and val" in review.headline.text()
    assert not review.banner.isVisible()
    rels = [e.rel for e in review.shown]
    assert p["flipped"] in rels
    review.grid.setCurrentRow(rels.index(p["flipped"]))  # selects that one only
    assert review.relabel_btn.isEnabled()
    with qtbot.waitSignal(data.scanned, timeout=60_000):  # the Data tab counts again
        qtbot.keyClick(review.grid, Qt.Key_R)
    assert (root / "train/c0/odd_red.png").exists() and not (root / p["flipped"]).exists()
    assert counts(data) == dict(before, c0=before["c0"] + 1, c1=before["c1"] - 1)
    assert p["flipped"] not in [e.rel for e in review.shown]
    assert "Ctrl+Z undoes it" in review.status.text()
    with qtbot.waitSignal(data.scanned, timeout=60_000):
        qtbot.keyClick(review.grid, Qt.Key_Z, Qt.ControlModifier)
    assert (root / p["flipped"]).exists() and not (root / "train/c0/odd_red.png").exists()
    assert counts(data) == before
    assert p["flipped"] in [e.rel for e in review.shown]

    leak = review.reasons.findItems("In train and val", Qt.MatchStartsWith)[0]
    review.reasons.setCurrentItem(leak)
    assert (p["copy"], p["original"]) in [(e.other, e.rel) for e in review.shown]

    review.views.setCurrentIndex(1)  # the map: points for every readable image
    qtbot.waitUntil(lambda: review.map.coords is not None, timeout=300_000)
    assert len(review.map.coords) == len(review.report.rows)
    chosen = np.nonzero(np.asarray(review.report.labels) == 1)[0]
    xy = review.map.coords[chosen]
    pad = 1e-3
    box = np.array([[xy[:, 0].min() - pad, xy[:, 1].min() - pad],
                    [xy[:, 0].max() + pad, xy[:, 1].min() - pad],
                    [xy[:, 0].max() + pad, xy[:, 1].max() + pad],
                    [xy[:, 0].min() - pad, xy[:, 1].max() + pad]])
    review.map._lassoed(box)  # what a lasso drawn around those points ends with
    assert review.views.currentIndex() == 0 and review.reason == "selection"
    assert set(chosen) <= {review.report.rows.index(e.rel) for e in review.shown}
    assert len(review.selected()) == len(review.shown)


def test_a_read_only_dataset_is_reviewed_read_only(window, qtbot, tmp_path):
    import os

    root = tmp_path / "colours"
    planted(root, per_class=8)
    os.chmod(root, 0o555)
    try:
        review = window.review_tab
        with qtbot.waitSignal(review.checked, timeout=300_000):
            window.check_data(str(root))
        assert review.banner.isVisibleTo(review) and "read-only" in review.banner.text()
        review.grid.setCurrentRow(0)
        assert not review.remove_btn.isEnabled() and not review.relabel_btn.isEnabled()
        qtbot.keyClick(review.grid, Qt.Key_Delete)  # the keyboard is refused too
        assert "act" not in review.workers
    finally:
        os.chmod(root, 0o755)


def test_choosing_a_dataset_settles_an_interrupted_change(window, qtbot, tmp_path):
    """A crash left a relabel half done; choosing the dataset (as at the next start)
    finishes it, says so, and the Data tab counts the files where they now are."""
    from core.review import journal as J
    from core.review.moves import move_no_replace

    root = tmp_path / "colours"
    planted(root, per_class=8)
    moves = (("train/c0/train0_00.png", "train/c1/train0_00.png"),
             ("train/c0/train0_01.png", "train/c1/train0_01.png"))
    J.append(root, J.Transaction("00001", "relabel", moves, (), "Relabel 2 images to c1",
                                 "", J.now()).record())
    move_no_replace(root / moves[0][0], root / moves[0][1])  # then the crash
    with qtbot.waitSignal(window.review_tab.settledMessage, timeout=60_000) as got:
        window.data_tab.set_source(str(root))
    assert got.args[0].startswith("Finished a change that was interrupted")
    assert all((root / dst).exists() and not (root / src).exists() for src, dst in moves)
    qtbot.waitUntil(lambda: window.data_tab.worker is None and counts(window.data_tab)
                    .get("c1") == 8 + 1 + 2, timeout=60_000)
