"""The layer tree's Qt model and panel over core's LayerTree."""
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from core.models.layers import LayerTree
from core.models import build_model, head_path
from gui.layer_panel import LayerPanel
from gui.layer_tree_model import LayerTreeModel
from tests.conftest import REPO


def tree_for(name):
    model, _, _ = build_model(name, "none", 10)
    return model, LayerTree(model)


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_qt_model_tester_passes(qtmodeltester, name):
    _, tree = tree_for(name)
    qtmodeltester.check(LayerTreeModel(tree), force_py=True)


def test_ticking_a_node_freezes_exactly_its_subtree(qtbot):
    model, tree = tree_for("mobilenet_v2")
    qt = LayerTreeModel(tree)
    changed = []
    qt.dataChanged.connect(lambda a, b, roles=None: changed.append(a.internalPointer().path))
    idx = qt.index_of("features.4")
    assert qt.data(idx, Qt.CheckStateRole) == Qt.Unchecked
    assert qt.setData(idx, Qt.Checked.value, Qt.CheckStateRole)
    inside = {id(p) for p in model.features[4].parameters()}
    assert all(p.requires_grad == (id(p) not in inside) for p in model.parameters())
    assert qt.data(idx, Qt.CheckStateRole) == Qt.Checked
    assert qt.data(qt.index_of("features"), Qt.CheckStateRole) == Qt.PartiallyChecked
    assert qt.data(qt.index_of("features", 4), Qt.DisplayRole) == "partly"
    assert "features" in changed and "features.4.conv.0.0" in changed
    qt.setData(qt.index_of("features"), Qt.Unchecked.value, Qt.CheckStateRole)
    assert all(p.requires_grad for p in model.parameters())


def test_parameterless_layers_have_no_checkbox():
    _, tree = tree_for("mobilenet_v2")
    qt = LayerTreeModel(tree)
    dropout = qt.index_of("classifier.0")
    assert qt.data(dropout, Qt.CheckStateRole) is None
    assert not qt.flags(dropout) & Qt.ItemIsUserCheckable
    assert not qt.setData(dropout, Qt.Checked.value, Qt.CheckStateRole)


def test_freeze_up_to_block_13_takes_two_clicks(qtbot):
    model, tree = tree_for("mobilenet_v2")
    panel = LayerPanel()
    qtbot.addWidget(panel)
    specs = []
    panel.specChanged.connect(specs.append)
    panel.set_tree(tree, {}, head_path(model))
    source = panel.model.index_of("features.13")
    panel.view.setCurrentIndex(source)  # click 1: select the row
    panel.actions["through"].trigger()  # click 2: the toolbar button
    frozen = [f"features.{i}" for i in range(14)]
    assert specs[-1] == ",".join(frozen)
    assert all(not p.requires_grad for i in range(14) for p in model.features[i].parameters())
    assert all(p.requires_grad for p in model.features[14].parameters())
    frozen_n = sum(p.numel() for i in range(14) for p in model.features[i].parameters())
    qtbot.waitUntil(lambda: panel.summary.text().startswith(f"frozen {frozen_n:,} / "),
                    timeout=2000)


def test_presets_and_filter(qtbot):
    model, tree = tree_for("resnet18")
    panel = LayerPanel()
    qtbot.addWidget(panel)
    panel.set_tree(tree, {}, head_path(model))
    panel.actions["bn"].trigger()
    assert all(not p.requires_grad for m in model.modules() if "BatchNorm" in type(m).__name__
               for p in m.parameters())
    assert model.conv1.weight.requires_grad
    panel.actions["backbone"].trigger()
    assert [p.requires_grad for p in model.parameters()].count(True) == 2
    panel.actions["none"].trigger()
    assert all(p.requires_grad for p in model.parameters())
    panel.filter.setText("downsample")
    shown = panel.visible_paths()
    assert "layer2.0.downsample" in shown and "layer2.0.downsample.0" in shown
    assert "layer2.0" in shown and "layer2" in shown  # the way to a match stays
    assert "layer2.1" not in shown and "fc" not in shown and "conv1" not in shown
    assert panel.view.isExpanded(panel.model.index_of("layer2.0"))
    panel.filter.setText("")
    assert len(panel.visible_paths()) == len(list(tree)) - 1


def test_the_window_module_does_not_import_torch():
    """The window must not wait ~3.5 s for torch: nothing on its import path may load it."""
    code = "import sys; import gui.main_window; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
