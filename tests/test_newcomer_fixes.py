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
    panel.view.setCurrentIndex(panel.proxy.mapFromSource(panel.model.index_of("blocks.3")))
    panel.actions["through"].trigger()
    frozen = sum(p.numel() for n, p in model.named_parameters()
                 if n.split(".")[0] in ("conv_stem", "bn1")
                 or any(n.startswith(f"blocks.{i}.") for i in range(4)))
    assert panel.tree.counts()[0] == frozen
    qtbot.waitUntil(lambda: panel.summary.text().startswith(f"frozen {frozen:,} / "),
                    timeout=2000)
