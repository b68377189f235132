"""Issue 14: what a newcomer hit in the GUI (each test failed before its fix)."""
from __future__ import annotations

import pytest

from core.models.layers import FROZEN, TRAINABLE, LayerTree

# a block in the middle of each offered architecture
MIDDLE = {"mobilenet_v2": "features.7", "resnet18": "layer2", "resnet50": "layer3",
          "efficientnet_lite0": "blocks.3"}


def _model(arch):
    from core.models import build_model

    model, _, _ = build_model(arch, "none", 4)
    return model


@pytest.mark.parametrize("arch", sorted(MIDDLE))
@pytest.mark.parametrize("kind", ["upto", "through"])
def test_freeze_before_a_block_freezes_everything_before_it(arch, kind):
    from core.models import head_path

    model = _model(arch)
    tree = LayerTree(model)
    target = MIDDLE[arch]
    tree.apply_spec(f"{kind}:{target}", head_path(model))
    names = [n for n, _ in model.named_parameters()]
    first = next(i for i, n in enumerate(names) if n.startswith(target + "."))
    inside = {n for n in names if n.startswith(target + ".")}
    for i, (name, p) in enumerate(model.named_parameters()):
        if i < first:
            assert not p.requires_grad, f"{name} comes before {target} but trains"
        elif name in inside:
            assert p.requires_grad == (kind == "upto"), name
        else:
            assert p.requires_grad, f"{name} comes after {target} but is frozen"


def test_efficientnet_batchnorm_act_before_the_block_is_frozen():
    from core.models import head_path

    model = _model("efficientnet_lite0")
    tree = LayerTree(model)
    tree.apply_spec("through:blocks.3", head_path(model))
    assert tree.node("bn1").state == FROZEN
    assert [tree.node(f"blocks.{i}").state for i in range(5)] == [FROZEN] * 4 + [TRAINABLE]
    assert tree.frozen_spec() == "conv_stem,bn1,blocks.0,blocks.1,blocks.2,blocks.3"


def test_gui_freeze_through_selected_on_efficientnet(qtbot):
    from core.models import head_path
    from gui.layer_panel import LayerPanel

    model = _model("efficientnet_lite0")
    panel = LayerPanel()
    qtbot.addWidget(panel)
    panel.set_tree(LayerTree(model), {}, head_path(model))
    panel.view.setCurrentIndex(panel.model.index_of("blocks.3"))
    panel.actions["through"].trigger()
    frozen = sum(p.numel() for n, p in model.named_parameters()
                 if n.split(".")[0] in ("conv_stem", "bn1")
                 or any(n.startswith(f"blocks.{i}.") for i in range(4)))
    assert panel.tree.counts()[0] == frozen
    qtbot.waitUntil(lambda: panel.summary.text().startswith(f"frozen {frozen:,} / "),
                    timeout=2000)


# --- item 4: live freeze changes show at once and are kept with the run -----------------------
def test_a_live_edit_shows_at_once_as_queued_until_the_worker_reports_it(qtbot):
    from PySide6.QtCore import Qt

    from core.models import head_path
    from gui.layer_panel import LayerPanel

    model = _model("mobilenet_v2")
    tree = LayerTree(model)
    tree.apply_spec("backbone", head_path(model))
    panel = LayerPanel()
    qtbot.addWidget(panel)
    panel.set_tree(tree, {}, head_path(model))
    sent, paused = [], [True]
    panel.attach(lambda spec, path, flag: sent.append((spec, path, flag)), lambda: paused[0])
    qt = panel.model
    qt.setData(qt.index_of("features.18"), Qt.Unchecked.value, Qt.CheckStateRole)
    assert sent == [(None, "features.18", True)]  # forwarded to the worker
    assert qt.data(qt.index_of("features.18"), Qt.CheckStateRole) == Qt.Unchecked  # at once
    assert panel.summary.text().endswith("queued: applies when training resumes")
    paused[0] = False
    panel.view.setCurrentIndex(qt.index_of("features.3"))
    panel.actions["through"].trigger()
    assert sent[-1] == ("through:features.3", None, False)
    assert panel.summary.text().endswith("queued: applies at the next batch")
    panel.reported("features.0-17", True)  # the first change applied: still one queued
    assert "queued" in panel.summary.text()
    panel.reported("features.0,features.1,features.2,features.3", True)
    assert "queued" not in panel.summary.text()
    assert tree.frozen_spec() == "features.0,features.1,features.2,features.3"


@pytest.fixture(scope="module")
def run_with_a_live_change(tmp_path_factory):
    from core.config import TrainConfig
    from core.events import BatchEnd, Callback
    from core.progress import TaskState
    from core.training.trainer import Trainer
    from tests.conftest import make_folder

    tmp = tmp_path_factory.mktemp("live")
    folder = make_folder(tmp / "data")
    state, holder = TaskState(), {}

    class Toggle(Callback):
        def on_event(self, event):
            if isinstance(event, BatchEnd) and event.epoch == 1 and event.batch == 1:
                t = holder["trainer"]
                state.queue(lambda: t.set_freeze(path="features.18", trainable=True))

    cfg = TrainConfig(model="mobilenet_v2", weights="none", data=str(folder), epochs=2,
                      freeze_epochs=1, image_size=32, batch_size=8, val_split=0.25)
    holder["trainer"] = trainer = Trainer(cfg, [Toggle()], state, run_dir=tmp / "run")
    trainer.fit()
    return tmp / "run"


def test_live_changes_are_saved_in_the_run_folder(run_with_a_live_change):
    import json

    from core.runs import read_freeze_changes

    changes = json.loads((run_with_a_live_change / "freeze_changes.json").read_text())
    assert [c["reason"] for c in changes] == ["start", "user", "schedule"]
    user = changes[1]
    assert user["message"] == "User unfroze features.18" and user["epoch"] == 1
    assert user["batch"] == 1 and "features.18" not in user["spec"].split(",")
    assert read_freeze_changes(run_with_a_live_change) == changes
    assert read_freeze_changes(run_with_a_live_change.parent) is None  # no file: None


def test_a_reopened_run_shows_its_live_changes(qtbot, run_with_a_live_change):
    from gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.open_run(str(run_with_a_live_change))
    charts, log = w.train_tab.charts, w.train_tab.log_view.toPlainText()
    xs = sorted({line.value() for _, line in charts.markers})
    per_epoch = charts.curves["batch_raw"].getData()[0].size // 2
    assert xs == [pytest.approx(1 / per_epoch), 1.0]  # the user's change, then unfreezing
    assert "Epoch 1, after batch 1: User unfroze features.18" in log
    assert log.index("User unfroze features.18") < log.index("Epoch 1 End")


# --- items 7-8: first run offline; what the tabs say before and after data is chosen ----------
def _dialog_texts(widget):
    from PySide6.QtWidgets import QMessageBox

    return [b.text() for b in widget.findChildren(QMessageBox)]


def test_first_run_offline_starts_with_the_model_whose_weights_are_here(window):
    assert window.model_tab.model_name() == "efficientnet_lite0"  # MobileNetV2's are absent
    assert "ship with TransferLab" in window.model_tab.info.text()
    window.model_tab.set_model("mobilenet_v2", "imagenet")
    assert "not downloaded yet: needs internet" in window.model_tab.info.text()
    assert "or choose a file" in window.model_tab.info.text()


def test_a_saved_model_choice_is_kept(qtbot):
    from gui.main_window import MainWindow
    from gui.settings import open_settings

    open_settings().setValue("model", "resnet18")
    w = MainWindow()
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.torchReady, timeout=60_000):
        w.start_loading_torch()
    assert w.model_tab.model_name() == "resnet18"


def test_missing_weights_stop_a_run_before_it_starts_in_gui_words(window, qtbot, image_folder):
    from core.paths import runs_dir

    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000):
        window.data_tab.set_source(str(image_folder))
    window.model_tab.set_model("mobilenet_v2", "imagenet")
    window.train_tab.start()
    texts = _dialog_texts(window.train_tab)
    assert any("not on this computer yet" in t and "“From a file”" in t for t in texts)
    assert not any("--weights" in t for t in texts)
    assert not window.train_tab.running and list(runs_dir().iterdir()) == []
    assert window.train_tab.progress.text() in ("", "0%")


def test_a_failed_imagenet_load_keeps_the_previous_model_and_says_so(window, qtbot):
    tab = window.inference_tab
    qtbot.waitUntil(lambda: tab.lm is not None, timeout=60_000)
    i = tab.source.findData("mobilenet_v2")
    assert tab.source.itemText(i).endswith("not downloaded yet")
    tab.source.setCurrentIndex(i)
    tab.load_selected_model()
    qtbot.waitUntil(lambda: bool(_dialog_texts(tab)), timeout=30_000)
    assert tab.model_label.text().startswith("Could not load that model. Still using: ")
    assert "efficientnet_lite0" in tab.model_label.text()
    assert tab.source.currentData() == "efficientnet_lite0"  # the list shows it again
    texts = _dialog_texts(tab)
    assert any("Load model file…" in t for t in texts)
    assert not any("--weights" in t for t in texts)


def test_tabs_follow_the_chosen_data(window, qtbot, tmp_path):
    from tests.conftest import make_folder

    form = window.train_tab.form.fields
    assert "comes from the data" in window.model_tab.tree_box.title()
    assert "Choose data on the Data tab" in window.train_tab.status.text()
    held_out = tmp_path / "held"
    make_folder(held_out / "train", classes=2, per_class=6)
    make_folder(held_out / "val", classes=2, per_class=3)
    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000):
        window.data_tab.set_source(str(held_out))
    assert window.train_tab.status.text() == "Ready: press Start."
    assert "2 outputs, one per class" in window.model_tab.tree_box.title()
    assert not form["val_split"].isEnabled()
    assert "val/ folder" in form["val_split"].toolTip()
    with qtbot.waitSignal(window.data_tab.scanned, timeout=30_000):
        window.data_tab.set_source(str(make_folder(tmp_path / "plain", classes=3)))
    assert form["val_split"].isEnabled()


# --- item 9: text that fits, readable axes -----------------------------------------------------
def test_a_long_status_is_elided_in_the_middle(qtbot):
    from gui.elided_label import ElidedLabel

    label = ElidedLabel()
    qtbot.addWidget(label)
    label.show()
    label.resize(200, 20)
    text = "Training finished. Model: /home/user/.local/share/TransferLab/runs/2026/model.pt"
    label.setText(text)
    shown = super(ElidedLabel, label).text()
    assert shown != text and "…" in shown and shown.endswith("model.pt")
    assert label.text() == text and label.toolTip() == text
    label.resize(2000, 20)
    assert super(ElidedLabel, label).text() == text and label.toolTip() == ""


def test_chart_axes_read_well(qtbot):
    from gui.charts import ChartsView

    charts = ChartsView()
    qtbot.addWidget(charts)
    charts.resize(900, 600)
    charts.show()
    lr_axis = charts.lr_plot.getAxis("left")
    (_, empty_ticks), = lr_axis.tickValues(*charts.lr_plot.viewRange()[1], 200)
    assert lr_axis.tickStrings(empty_ticks, 1, 1) == ["1e-5", "1e-4", "1e-3", "1e-2"]
    charts.set_epochs(3)  # (RunStarted)
    for b in range(1, 4):  # early in a run: x is a few thousandths of an epoch
        charts.add_batch(1, b, 1000, 2.0 - b / 10, 9e-5 * (1 - b / 100))
    lo, hi = charts.batch_plot.viewRange()[0]  # the run's epochs, not -5..5 nor 0..0.003
    assert lo <= 0 and 3 <= hi < 3.1
    assert "x0.001" not in charts.batch_plot.getAxis("bottom").labelString()
    lo, hi = charts.lr_plot.viewRange()[1]
    (_, ticks), = lr_axis.tickValues(lo, hi, 200)
    assert len(ticks) <= 5 and all(s.startswith("1e-") for s in lr_axis.tickStrings(ticks, 1, 1))
    # the legend is in the title, outside the curves' area, so it covers none of them
    for plot in (charts.acc_plot, charts.loss_plot):
        assert plot.legend is None
        assert "train" in plot.titleLabel.text and "validation" in plot.titleLabel.text
    charts.add_marker(0.25, "layers changed")
    charts.add_marker(1.0, "unfrozen")
    labels = [line.label for _, line in charts.markers if hasattr(line, "label")]
    assert labels[0].orthoPos != labels[1].orthoPos  # two labels, two heights


def test_epoch_line_says_validation():
    from core.events import epoch_line

    assert "| Val Acc: 76.52%" in epoch_line(1, 0.8, 72.4, 76.52)


# --- item 10: a finished run's checkpoint can be reclaimed -------------------------------------
def test_a_finished_runs_checkpoint_is_explained_and_can_be_deleted(qtbot,
                                                                    run_with_a_live_change):
    import shutil

    from PySide6.QtWidgets import QMessageBox

    from core.runs import read_batches, read_metrics
    from gui.train_tab import TrainTab

    run = run_with_a_live_change.parent / "copy"
    shutil.copytree(run_with_a_live_change, run)
    tab = TrainTab(lambda: None)
    qtbot.addWidget(tab)
    tab.show_run(str(run), read_metrics(run), read_batches(run))
    size_mb = (run / "checkpoint.pt").stat().st_size / 2**20
    assert not tab.checkpoint_btn.isHidden()
    assert tab.checkpoint_btn.text() == f"Delete checkpoint ({size_mb:.1f} MB)"
    assert "continued later" in tab.checkpoint_btn.toolTip()
    tab.checkpoint_btn.click()
    tab.findChild(QMessageBox).button(QMessageBox.Cancel).click()
    assert (run / "checkpoint.pt").exists()
    qtbot.waitUntil(lambda: not tab.findChildren(QMessageBox))  # the asked box is gone
    tab.checkpoint_btn.click()
    tab.findChild(QMessageBox).button(QMessageBox.Yes).click()
    assert not (run / "checkpoint.pt").exists() and (run / "model.pt").exists()
    assert tab.checkpoint_btn.isHidden()


# --- item 3: every image of a class can be seen, odd formats flagged ---------------------------
def test_browsing_a_class_pages_through_all_its_files_and_flags_the_odd_gif(qtbot, tmp_path):
    from gui.class_browser import PAGE
    from gui.data_tab import DataTab
    from tests.conftest import make_folder, make_image

    root = make_folder(tmp_path / "insects", classes=2, per_class=PAGE + 5, size=(32, 32))
    make_image(root / "class_0" / "imageNotFound.gif", (200, 200, 200), fmt="GIF")
    tab = DataTab(lambda: 32)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.scanned, timeout=60_000):
        tab.set_torch_ready()
        tab.set_source(str(root))
    assert tab.browse_btn.isEnabled()
    browser = tab.browse_class(0)
    qtbot.waitUntil(lambda: bool(browser.files), timeout=30_000)
    assert len(browser.files) == PAGE + 6
    assert "1 .gif" in browser.summary.text()
    assert browser.page_label.text() == "Page 1 of 2" and browser.view.count() == PAGE
    assert browser.view.item(0).text() == "⚠ imageNotFound.gif"  # flagged files come first
    assert browser.view.item(1).text() == "000.jpg"  # then all, by name
    browser.next_btn.click()
    names = [browser.view.item(i).text() for i in range(browser.view.count())]
    assert names == [f"{i:03d}.jpg" for i in range(PAGE - 1, PAGE + 5)]
    qtbot.waitUntil(lambda: not browser.view.item(5).icon().isNull(), timeout=30_000)
    browser.close()


# --- item 11: the first paint does not wait for the charts' library -----------------------------
def test_the_window_module_imports_neither_torch_nor_pyqtgraph():
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys; import gui.main_window; "
            "print(sorted(m for m in ('torch', 'pyqtgraph', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_charts_are_made_once_pytorch_is_ready(qtbot):
    from gui.train_tab import TrainTab

    tab = TrainTab(lambda: None)
    qtbot.addWidget(tab)
    assert tab._charts is None and not tab.chart_placeholder.isHidden()
    tab.set_ready(True)
    assert tab._charts is not None and tab.chart_placeholder.isHidden()
    assert tab.charts is tab._charts  # made once


def test_a_tree_built_for_a_network_no_longer_chosen_is_not_shown(qtbot):
    from gui.model_tab import ModelTab

    tab = ModelTab()
    qtbot.addWidget(tab)
    tab.set_model("efficientnet_lite0")
    tab.torch_ready = True
    with qtbot.waitSignal(tab.treeBuilt, timeout=60_000):
        tab.rebuild_tree()
        stale_worker = tab.structure_worker  # still connected to the tab after it is done
    with qtbot.waitSignal(tab.treeBuilt, timeout=60_000):
        tab.set_model("mobilenet_v2")
        tab.rebuild_tree()
        stale_worker.done.emit(stale_worker_result(tab))  # a lite0 result arriving late
    assert tab.panel.arch == "mobilenet_v2"
    assert "features.17" in {n.path for n in tab.panel.tree}


def stale_worker_result(tab):
    from core.models import build_model, head_path
    from core.models.layers import LayerTree

    model, _, _ = build_model("efficientnet_lite0", "none", 10)
    return LayerTree(model), {}, head_path(model), "efficientnet_lite0", None, None
