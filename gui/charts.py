"""Live training charts: every curve is created once and then only ``setData`` is called."""
from __future__ import annotations

from gui.plot_style import follow_palette, pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.chart_marks import change_marker


TRAIN_PEN = pg.mkPen("#1f77b4", width=2)
VAL_PEN = pg.mkPen("#ff7f0e", width=2)
RAW_PEN = pg.mkPen(color=(31, 119, 180, 70), width=1)
MARKER_PEN = pg.mkPen("#2ca02c", width=1.5, style=pg.QtCore.Qt.DashLine)
SMOOTHING = 0.9  # exponential moving average of the batch loss
LEGEND = ("&nbsp;&nbsp;<span style='color:#1f77b4'>━ train</span>"
          "&nbsp;&nbsp;<span style='color:#ff7f0e'>━ validation</span>")


class LrAxis(pg.AxisItem):
    """The log-scale learning-rate axis: one label per power of ten, written ``1e-4`` (the
    default's minor labels overlapped and clipped, and read "9 8 7" on an empty chart)."""

    def tickValues(self, minVal, maxVal, size):
        import math

        lo, hi = math.floor(minVal), math.ceil(maxVal)
        step = max(1, math.ceil((hi - lo) / 4))  # at most ~5 labels
        return [(step, [float(v) for v in range(lo, hi + 1, step)])]

    def tickStrings(self, values, scale, spacing):
        return [f"1e{int(round(v))}" for v in values]


class ChartsView(QWidget):
    """Batch loss (raw and smoothed), epoch loss, accuracy and learning rate.

    The x axis is in epochs everywhere (batch 352 of 704 in epoch 2 is x = 1.5), so a marker
    where the backbone unfroze lines up across all four plots.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        follow_palette()
        self.layout_widget = pg.GraphicsLayoutWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.layout_widget)
        g = self.layout_widget
        self.batch_plot = self._plot(g, 0, 0, "Batch loss", "loss")
        self.loss_plot = self._plot(g, 0, 1, "Loss per epoch", "loss")
        self.acc_plot = self._plot(g, 1, 0, "Accuracy", "accuracy (%)")
        self.lr_plot = self._plot(g, 1, 1, "Learning rate", "lr",
                                  {"left": LrAxis(orientation="left")})
        self.lr_plot.setLogMode(y=True)
        self.lr_plot.getAxis("left").setWidth(48)
        self.curves = {
            "batch_raw": self.batch_plot.plot(pen=RAW_PEN),
            "batch_smooth": self.batch_plot.plot(pen=TRAIN_PEN, name="smoothed"),
            "train_loss": self.loss_plot.plot(pen=TRAIN_PEN, symbol="o", symbolSize=6,
                                              symbolBrush="#1f77b4", name="train"),
            "val_loss": self.loss_plot.plot(pen=VAL_PEN, symbol="o", symbolSize=6,
                                            symbolBrush="#ff7f0e", name="validation"),
            "train_acc": self.acc_plot.plot(pen=TRAIN_PEN, symbol="o", symbolSize=6,
                                            symbolBrush="#1f77b4", name="train"),
            "val_acc": self.acc_plot.plot(pen=VAL_PEN, symbol="o", symbolSize=6,
                                          symbolBrush="#ff7f0e", name="validation"),
            "lr": self.lr_plot.plot(pen=TRAIN_PEN, stepMode=None),
        }
        self.markers: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        self.clear()

    @staticmethod
    def _plot(g, row, col, title, unit, axes=None) -> pg.PlotItem:
        p = g.addPlot(row=row, col=col, title=title, axisItems=axes)
        p.showGrid(x=True, y=True, alpha=0.25)
        p.setLabel("bottom", "epoch")
        p.setLabel("left", unit)
        for side in ("left", "bottom"):  # no "epoch (x0.001)" early in a run
            p.getAxis(side).enableAutoSIPrefix(False)
        if title in ("Loss per epoch", "Accuracy"):  # the legend in the title: it never
            p.setTitle(f"{title} {LEGEND}")         # covers a curve, whatever its shape
        return p

    def clear(self) -> None:
        self.batch_x, self.batch_raw, self.batch_smooth = [], [], []
        self.epoch_x: list[float] = []
        self.epoch = {k: [] for k in ("train_loss", "val_loss", "train_acc", "val_acc")}
        self.lr_x, self.lr_y = [], []
        for curve in self.curves.values():
            curve.setData([], [])
        for plot, line in self.markers:
            plot.removeItem(line)
        self.markers = []
        self.lr_plot.setYRange(-5, -2, padding=0)  # 1e-5..1e-2 until a run reports its LR
        self.acc_plot.setYRange(0, 100, padding=0.02)  # percent, until an epoch reports one
        self.set_epochs(1)

    def plots(self) -> tuple[pg.PlotItem, ...]:
        return self.batch_plot, self.loss_plot, self.acc_plot, self.lr_plot

    def set_epochs(self, epochs: int) -> None:
        """The x axis spans the run's epochs from its start (not -5..5 around the first
        point, nor rescaled at every batch)."""
        for plot in self.plots():
            plot.enableAutoRange(x=False)
            plot.setXRange(0, max(1, epochs), padding=0.02)

    def add_batch(self, epoch: int, batch: int, batches: int, loss: float, lr: float) -> None:
        self._append_batch(epoch, batch, batches, loss, lr)
        self._draw_batches()

    def _append_batch(self, epoch: int, batch: int, batches: int, loss: float, lr: float):
        x = epoch - 1 + batch / batches
        prev = self.batch_smooth[-1] if self.batch_smooth else loss
        self.batch_x.append(x)
        self.batch_raw.append(loss)
        self.batch_smooth.append(SMOOTHING * prev + (1 - SMOOTHING) * loss)
        self.lr_x.append(x)
        self.lr_y.append(lr)

    def _draw_batches(self) -> None:
        if self.lr_y:
            self.lr_plot.enableAutoRange(axis="y")
        self.curves["batch_raw"].setData(self.batch_x, self.batch_raw)
        self.curves["batch_smooth"].setData(self.batch_x, self.batch_smooth)
        self.curves["lr"].setData(self.lr_x, self.lr_y)

    def add_epoch(self, row: dict) -> None:
        self._append_epoch(row)
        self._draw_epochs()

    def _append_epoch(self, row: dict) -> None:
        self.epoch_x.append(float(row["epoch"]))
        for key, values in self.epoch.items():
            values.append(float(row[key]))

    def _draw_epochs(self) -> None:
        if self.epoch_x:
            self.acc_plot.enableAutoRange(axis="y")
        for key, values in self.epoch.items():
            self.curves[key].setData(self.epoch_x, values)

    def add_marker(self, x: float, label: str) -> None:
        # successive labels at different heights, so two close markers' words never overlap
        height = 0.92 - 0.12 * (len(self.markers) // 4 % 4)
        for plot in self.plots():
            line = pg.InfiniteLine(pos=x, angle=90, pen=MARKER_PEN,
                                   label=label if plot is self.batch_plot else None,
                                   labelOpts={"position": height, "color": "#2ca02c"})
            plot.addItem(line)
            self.markers.append((plot, line))

    def load_history(self, history: list[dict], batches: list[dict] = (),
                     changes: list[dict] | None = None) -> None:
        """A finished run's curves, from its metrics.csv and batches.csv, with a marker for
        each freeze change it recorded (``changes``; older runs: where the phase changed)."""
        self.clear()
        for b in batches:  # one setData per curve below, not one per batch (quadratic)
            self._append_batch(b["epoch"], b["batch"], b["batches"], b["loss"], b["lr"])
        for row in history:
            self._append_epoch(row)
        self._draw_batches()
        self._draw_epochs()
        last = max([r["epoch"] for r in history] + [b["epoch"] for b in batches], default=1)
        self.set_epochs(last)
        if changes is not None:
            per_epoch = batches[0]["batches"] if batches else None
            for c in changes:
                marker = change_marker(c["reason"], c["epoch"], c["batch"], per_epoch)
                if marker:
                    self.add_marker(*marker)
            return
        phases = [r["phase"] for r in history]
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                self.add_marker(i, "unfrozen" if phases[i] == "unfrozen" else phases[i])

    def save_png(self, path: str) -> bool:
        return self.layout_widget.grab().save(path, "PNG")
