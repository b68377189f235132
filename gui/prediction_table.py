"""The results table of the Inference tab: one row per image, sortable, filled batch by batch."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHeaderView, QTableView

COLUMNS = ("", "File", "Top-1", "Probability", "Top-k")


class PredictionTableModel(QAbstractTableModel):
    """Holds core ``Prediction``s (plain data); thumbnails become pixmaps here, in the GUI
    thread, from the bytes the worker produced."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows = []  # Prediction, readable images only
        self._pixmaps: dict[int, QPixmap] = {}

    def clear(self) -> None:
        self.beginResetModel()
        self.rows, self._pixmaps = [], {}
        self.endResetModel()

    def append(self, predictions) -> None:
        good = [p for p in predictions if not p.error]
        if not good:
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(good) - 1)
        self.rows.extend(good)
        self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return COLUMNS[section]
        return None

    def _pixmap(self, row: int) -> QPixmap | None:
        if row not in self._pixmaps:
            thumb = self.rows[row].thumb
            if thumb is None:
                return None
            w, h, data = thumb
            self._pixmaps[row] = QPixmap.fromImage(
                QImage(data, w, h, 3 * w, QImage.Format_RGB888).copy())
        return self._pixmaps[row]

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        p, col = self.rows[index.row()], index.column()
        if role == Qt.DecorationRole and col == 0:
            return self._pixmap(index.row())
        if role == Qt.DisplayRole:
            if col == 1:
                return p.path.rsplit("/", 1)[-1]
            if col == 2:  # ⚠: unlike the training images (core.inference.ood)
                return ("⚠ " if p.unfamiliar else "") + p.topk[0][0]
            if col == 3:
                return f"{100 * p.topk[0][1]:.1f}%"
            if col == 4:
                return ", ".join(f"{c} {100 * v:.0f}%" for c, v in p.topk[1:])
        if role == Qt.UserRole:  # sort keys
            return (None, p.path, p.topk[0][0], p.topk[0][1], "")[col]
        if role == Qt.ToolTipRole:
            from core.inference.predictions import unfamiliar_note

            return "\n".join(filter(None, [p.path, unfamiliar_note(p.ood_score)]))
        return None


def prediction_view(parent) -> tuple[PredictionTableModel, QSortFilterProxyModel, QTableView]:
    """The model, a sorting proxy and the table view, with columns sized so a file name and
    a long class name ("German shepherd") both show; the top-k list takes the rest."""
    model = PredictionTableModel(parent)
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(Qt.UserRole)
    table = QTableView()
    table.setModel(proxy)
    table.setSortingEnabled(True)
    table.setSelectionBehavior(QTableView.SelectRows)
    table.setSelectionMode(QTableView.SingleSelection)
    table.verticalHeader().setDefaultSectionSize(52)
    table.verticalHeader().hide()
    table.setWordWrap(False)
    table.setTextElideMode(Qt.ElideMiddle)  # a file name keeps its end
    table.setIconSize(QSize(48, 48))
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.Interactive)
    header.setSectionResizeMode(4, QHeaderView.Stretch)
    for col, width in ((0, 56), (1, 230), (2, 170), (3, 90)):
        header.resizeSection(col, width)
    return model, proxy, table
