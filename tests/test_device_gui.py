"""The Train tab's device choice: filled from what PyTorch found, off the GUI thread."""
from __future__ import annotations

import pytest
import torch

from gui.main_window import MainWindow


@pytest.fixture
def window(qtbot):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    w.train_tab.shutdown()
    if getattr(w, "loader", None) is not None:
        w.loader.thread.wait(10_000)  # test teardown only: let the loader's thread end


def test_device_box_lists_what_torch_found_and_feeds_the_config(window, qtbot):
    combo = window.train_tab.form.fields["device"]
    assert combo.count() == 1 and combo.currentData() == "auto"  # before PyTorch has loaded
    with qtbot.waitSignal(window.torchReady, timeout=60_000):
        window.start_loading_torch()
    texts = [combo.itemText(i) for i in range(combo.count())]
    values = [combo.itemData(i) for i in range(combo.count())]
    threads = f"CPU, {torch.get_num_threads()} threads"
    assert values[0] == "auto" and values[-1] == "cpu" and texts[-1] == threads
    assert texts[0].startswith("auto — ")
    combo.setCurrentIndex(len(values) - 1)
    assert window.train_tab.form.values()["device"] == "cpu"
    window.train_tab.form.set_values({"device": "cuda:3"})  # e.g. a reopened GPU run
    assert window.train_tab.form.values()["device"] == "cuda:3"
    assert "not found here" in combo.currentText()
