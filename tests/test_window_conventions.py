"""Issue 22, the window: what users of desktop apps expect (Help > About, recent runs,
Ctrl+1…7, drops where one would try them, dark mode) and data, not text, behind the widgets."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel

from tests.test_evaluate import run  # noqa: F401 - a fixture
from tests.test_runs import runs  # noqa: F401 - a fixture


def dropped(widget, *paths) -> tuple[bool, bool]:
    """Drag ``paths`` over ``widget`` and drop them: (drag accepted, drop accepted)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPointF(5, 5).toPoint(), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dragEnterEvent(enter)
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(drop)
    return enter.isAccepted(), drop.isAccepted()


def test_help_about_names_the_version_the_libraries_and_qts_licence(window, qtbot):
    from gui.about import app_version, libraries, licence_of, requirement_names
    from gui.window_menus import show_about

    titles = [a.text() for a in window.menus["help"].actions()]
    assert titles == ["About TransferLab", "About Qt"]
    dialog = show_about(window)
    qtbot.waitUntil(lambda: dialog.table.rowCount() > 0, timeout=30_000)
    rows = {dialog.table.item(r, 0).text(): (dialog.table.item(r, 1).text(),
                                             dialog.table.item(r, 2).text())
            for r in range(dialog.table.rowCount())}
    import torch

    assert rows["torch"][0] == torch.__version__.split("+")[0] or \
        rows["torch"][0] == torch.__version__
    assert "LGPL" in rows["PySide6-Essentials"][1]
    texts = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert f"TransferLab {app_version()}" in texts and "Lesser General Public License" in texts
    dialog.close()
    assert requirement_names("# c\ntorch==2.1\nfoo-bar==1 ; x\nnot pinned\n") == ["torch", "foo-bar"]
    meta = {"License-Expression": None, "License": "Apache License\n  Version 2.0 ...",
            "Classifier": None}

    class Meta(dict):
        def get_all(self, _key):
            return ["License :: OSI Approved :: Apache Software License"]

    assert licence_of(Meta(meta)) == "Apache Software License"  # not a whole licence text
    assert all("\n" not in lic and len(lic) < 200 for _, _, lic in libraries())


def test_recent_runs_in_the_file_menu(window, qtbot, run):
    _folder, run_dir = run
    window.open_run(str(run_dir))
    recent = window.menus["recent"]
    recent.aboutToShow.emit()
    entries = [a for a in recent.actions() if a.data()]
    assert [a.data() for a in entries] == [str(run_dir.resolve())]
    assert entries[0].isEnabled() and run_dir.name in entries[0].text()
    window.train_tab.last_run_dir = None
    entries[0].trigger()  # reopens it
    assert window.train_tab.last_run_dir == str(run_dir.resolve())


def test_ctrl_number_goes_to_that_tab(window, qtbot):
    from gui.main_window import TABS

    window.activateWindow()
    for i, key in enumerate(TABS, start=1):
        qtbot.keyClick(window, getattr(Qt.Key, f"Key_{i}"), Qt.KeyboardModifier.ControlModifier)
        assert window.tabs.currentIndex() == i - 1, key
    assert window.tabs.tabText(2) == "3  Train"


def test_a_run_folder_dropped_on_runs_is_listed_and_selected(qtbot, runs):
    from gui.runs_view import RunsView

    view = RunsView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.listed, timeout=30_000):
        assert dropped(view, runs / "run-b") == (True, True)
    assert view.current() is not None and view.current().name == "run-b"
    assert dropped(view, runs / "run-b" / "config.json")[0] is False  # a file: not a run


def test_a_model_file_dropped_on_evaluate_is_evaluated(qtbot, run, tmp_path):
    from gui.evaluate_tab import EvaluateTab

    _folder, run_dir = run
    tab = EvaluateTab()
    qtbot.addWidget(tab)
    tab.set_torch_ready()
    note = tmp_path / "notes.txt"
    note.write_text("x")
    assert dropped(tab, note) == (False, False)
    assert dropped(tab, run_dir / "model.pt") == (True, True)
    assert tab.model_file == str(run_dir / "model.pt") and tab.run_button.isEnabled()


def test_dark_mode_has_no_light_backgrounds(qtbot):
    """With a dark palette (what Qt applies in the system's dark mode) the drop hint, the
    layer tree's frozen rows and the charts are dark too: no light colour is hard-coded."""
    from gui.style import STYLESHEET, dark_palette, frozen_colours

    app = QApplication.instance()
    old_palette, old_sheet = app.palette(), app.styleSheet()
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLESHEET)
    try:
        from gui.inference_tab import InferenceTab

        tab = InferenceTab()
        qtbot.addWidget(tab)
        tab.resize(900, 600)
        tab.show()
        qtbot.waitExposed(tab)
        hint = tab.hint.grab().toImage()
        assert hint.pixelColor(hint.width() // 2, 8).lightnessF() < 0.35
        background, text = frozen_colours()
        assert background.lightnessF() < 0.35 < text.lightnessF()
        import gui.plot_style  # noqa: F401 - the charts' colours come from the palette here

        from gui.charts import ChartsView

        charts = ChartsView()
        qtbot.addWidget(charts)
        image = charts.layout_widget.grab().toImage()
        assert image.pixelColor(image.width() // 2, image.height() // 2).lightnessF() < 0.35
    finally:
        app.setPalette(old_palette)
        app.setStyleSheet(old_sheet)


def test_a_reopened_run_draws_each_curve_once(qtbot):
    from gui.charts import ChartsView

    charts = ChartsView()
    qtbot.addWidget(charts)
    calls = {key: 0 for key in charts.curves}  # setData calls that draw points

    def counted(key, real):
        def set_data(*args, **kw):
            calls[key] += bool(len(args[0])) if args else 0
            return real(*args, **kw)
        return set_data

    for key, curve in charts.curves.items():
        curve.setData = counted(key, curve.setData)
    batches = [{"epoch": e, "batch": b, "batches": 50, "loss": 1.0 / b, "lr": 1e-3}
               for e in (1, 2) for b in range(1, 51)]
    history = [{"epoch": e, "train_loss": 1.0, "val_loss": 1.0, "train_acc": 50.0,
                "val_acc": 60.0} for e in (1, 2)]
    charts.load_history(history, batches, [])
    assert set(calls.values()) == {1}  # one setData per curve, whatever the run's length
    assert len(charts.curves["batch_raw"].getData()[0]) == 100


def test_lists_keep_their_objects_not_their_words(window, qtbot):
    """The Inference tab's model list is searched by data after its texts change ("— not
    downloaded yet"), and the Data tab reads class names from its summary, not a cell."""
    from gui.inference_models import NEEDS_DOWNLOAD

    source = window.inference_tab.source
    i = source.findData("resnet18")
    assert source.itemData(i, NEEDS_DOWNLOAD) is True and "not downloaded" in source.itemText(i)
    assert source.findData("efficientnet_lite0") > 0
    assert source.itemData(source.findData("efficientnet_lite0"), NEEDS_DOWNLOAD) is False

