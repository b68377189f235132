"""The Runs view's comparison pane: the selected runs' curves overlaid (one colour each, a
legend with their names) beside the settings that differ between them.

What differs comes from core.runs.listing.differing; this pane only draws it.
"""
from __future__ import annotations

import math

from gui.layouts import column
from gui.plot_style import follow_palette, pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QTableWidget, QTableWidgetItem

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


class EpochAxis(pg.AxisItem):
    """Whole epochs only (a run's rows are per epoch: "1.5" named no row), at most ~8 labels."""

    def tickValues(self, minVal, maxVal, size):
        lo, hi = math.ceil(minVal), math.floor(maxVal)
        step = max(1, math.ceil((hi - lo + 1) / 8))
        return [(step, [float(v) for v in range(lo, hi + 1, step)])]


class RunComparison(QSplitter):
    def __init__(self, parent=None):
        super().__init__(Qt.Horizontal, parent)
        follow_palette()
        self.charts = pg.GraphicsLayoutWidget()
        self.acc_plot = self.charts.addPlot(
            title="validation accuracy (%)", axisItems={"bottom": EpochAxis("bottom")})
        self.loss_plot = self.charts.addPlot(
            title="train loss", axisItems={"bottom": EpochAxis("bottom")})
        for plot in (self.acc_plot, self.loss_plot):
            plot.setLabel("bottom", "epoch")
            plot.getAxis("left").setWidth(48)  # room for "92.5": left alone, it showed no labels
            plot.addLegend()
        self.diff = QTableWidget(0, 0)
        self.note = QLabel(compare_note(0, 0))
        self.note.setWordWrap(True)
        self.addWidget(self.charts)
        self.addWidget(column(self.note, (self.diff, 1)))

    def show_runs(self, runs, live_changes) -> None:
        """``live_changes(run)``: the freeze changes the user made while it trained."""
        from core.runs.listing import differing

        self._plot(runs)
        diff = differing(runs) if len(runs) > 1 else {}
        live = [" · ".join(change_text(c) for c in live_changes(r)) or "none" for r in runs]
        if len(runs) > 1 and len(set(live)) > 1:
            diff["freeze changes during the run"] = live
        self.note.setText(compare_note(len(runs), len(diff)))
        self._fill(diff, [r.name for r in runs])

    def _plot(self, runs) -> None:
        for plot in (self.acc_plot, self.loss_plot):
            plot.clear()
            plot.legend.clear()
        for i, r in enumerate(runs):
            pen = pg.mkPen(COLOURS[i % len(COLOURS)], width=2)
            epochs = [h["epoch"] for h in r.history]  # 1-based
            self.acc_plot.plot(epochs, [h["val_acc"] for h in r.history], pen=pen, name=r.name,
                               symbol="o", symbolSize=5, symbolBrush=pen.color())
            self.loss_plot.plot(epochs, [h["train_loss"] for h in r.history], pen=pen,
                                name=r.name)

    def _fill(self, diff: dict, names: list[str]) -> None:
        self.diff.setVisible(bool(diff))  # no empty grid under "Same settings"
        self.diff.clear()
        self.diff.setRowCount(len(diff))
        self.diff.setColumnCount(len(names))
        self.diff.setHorizontalHeaderLabels(names)
        self.diff.setVerticalHeaderLabels(list(diff))
        for row, values in enumerate(diff.values()):
            for col, value in enumerate(values):
                text = "—" if value is None else str(value)  # (not recorded, not set)
                self.diff.setItem(row, col, QTableWidgetItem(text))
        self.diff.resizeColumnsToContents()

    def curve_names(self) -> list[str]:
        return [item.name() for item in self.acc_plot.listDataItems()]


def change_text(change: dict) -> str:
    return f"epoch {change['epoch']}, batch {change['batch']}: {change['message']}"


def compare_note(selected: int, differing: int) -> str:
    if selected < 2:
        return "Select two or more runs to compare them."
    if not differing:
        return (f"Same settings: the {selected} runs used the same recipe and made the same "
                f"freeze changes during training.")
    return f"{differing} setting{'s differ' if differing > 1 else ' differs'}:"
