"""The results table of the Inference tab: one row per image, sortable, filled batch by batch.

A photo from a labelled folder (its parent folder names one of the model's classes) shows
that true class, and a top-1 that differs from it is marked, so the wrong ones stand out.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHeaderView, QStyledItemDelegate, QTableView

from gui.style import error_colour

COLUMNS = ("", "File", "True class", "Top-1", "Probability", "Top-k")
THUMB_COL, FILE_COL, TRUE_COL, TOP1_COL, PROB_COL, TOPK_COL = range(len(COLUMNS))
# Qt's enums spelled in full (the short spelling is a slow look-up in PySide6, per call)
_R = Qt.ItemDataRole
DISPLAY, DECORATION, TOOLTIP, FOREGROUND = (_R.DisplayRole, _R.DecorationRole, _R.ToolTipRole,
                                            _R.ForegroundRole)
SORT_ROLE = _R.UserRole
TOPK_ROLE = _R.UserRole + 1  # the (class, probability) list behind a Top-k cell
WRONG, RIGHT = "✗ ", "✓ "


def true_class(path: str, classes: list[str]) -> str | None:
    """The class a photo's parent folder names, when it is one of ``classes``."""
    parent = Path(path).parent.name
    return parent if parent in classes else None


class PredictionTableModel(QAbstractTableModel):
    """Holds core ``Prediction``s (plain data); thumbnails become pixmaps here, in the GUI
    thread, from the bytes the worker produced."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows = []  # Prediction, readable images only
        self.truth: list[str | None] = []  # each row's true class, when its folder says
        self.classes: list[str] = []
        self._pixmaps: dict[int, QPixmap] = {}

    def set_classes(self, classes: list[str]) -> None:
        """The model's classes: which folder names are true classes."""
        self.classes = list(classes)

    def clear(self) -> None:
        self.beginResetModel()
        self.rows, self.truth, self._pixmaps = [], [], {}
        self.endResetModel()

    def append(self, predictions) -> None:
        good = [p for p in predictions if not p.error]
        if not good:
            return
        first = len(self.rows)
        self.beginInsertRows(QModelIndex(), first, first + len(good) - 1)
        self.rows.extend(good)
        self.truth.extend(true_class(p.path, self.classes) for p in good)
        self.endInsertRows()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=DISPLAY):
        if orientation == Qt.Orientation.Horizontal and role == DISPLAY:
            return COLUMNS[section]
        return None

    def _pixmap(self, row: int) -> QPixmap | None:
        if row not in self._pixmaps:
            thumb = self.rows[row].thumb
            if thumb is None:
                return None
            w, h, data = thumb
            self._pixmaps[row] = QPixmap.fromImage(
                QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
        return self._pixmaps[row]

    def wrong(self, row: int) -> bool | None:
        """Whether the top-1 misses the true class; None when the true class is unknown."""
        truth = self.truth[row]
        return None if truth is None else self.rows[row].topk[0][0] != truth

    def data(self, index: QModelIndex, role=DISPLAY):
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        p = self.rows[row]
        if role == DISPLAY:
            return self._text(row, col)
        if role == DECORATION and col == THUMB_COL:
            return self._pixmap(row)
        if role == FOREGROUND and col == TOP1_COL and self.wrong(row):
            return error_colour_q()
        if role == SORT_ROLE:
            return (None, p.path, self.truth[row] or "", p.topk[0][0], p.topk[0][1], "")[col]
        if role == TOPK_ROLE and col == TOPK_COL:
            return p.topk[1:]
        if role == TOOLTIP:
            from core.inference.predictions import unfamiliar_note

            wrong = self.wrong(row)
            verdict = "" if wrong is None else (f"wrong: the folder says {self.truth[row]}"
                                                if wrong else "right")
            return "\n".join(filter(None, [p.path, verdict, unfamiliar_note(p.ood_score)]))
        return None

    def _text(self, row: int, col: int) -> str | None:
        p = self.rows[row]
        if col == FILE_COL:
            return Path(p.path).name
        if col == TRUE_COL:
            return self.truth[row] or ""
        if col == TOP1_COL:  # ⚠: unlike the training images (core.inference.ood)
            wrong = self.wrong(row)
            return (("⚠ " if p.unfamiliar else "") +
                    ("" if wrong is None else WRONG if wrong else RIGHT) + p.topk[0][0])
        if col == PROB_COL:
            return f"{100 * p.topk[0][1]:.1f}%"
        if col == TOPK_COL:
            return topk_text(p.topk[1:])
        return None


def topk_text(items) -> str:
    return ", ".join(f"{c} {100 * v:.0f}%" for c, v in items)


def error_colour_q():
    from PySide6.QtGui import QColor

    return QColor(error_colour())


class TopKDelegate(QStyledItemDelegate):
    """The Top-k cell shows whole "class NN%" entries, as many as fit, then "+N more":
    never a number cut in the middle ("daffodil 16…%")."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 - Qt's name
        super().initStyleOption(option, index)
        items = index.data(TOPK_ROLE) or []
        width = option.rect.width() - 8
        fm = option.fontMetrics
        for n in range(len(items), 0, -1):
            more = f"  +{len(items) - n} more" if n < len(items) else ""
            text = topk_text(items[:n]) + more
            if fm.horizontalAdvance(text) <= width:
                option.text = text
                return
        if items:  # not even one whole entry: shorten its name, never its number
            name, p = items[0]
            tail = f" {100 * p:.0f}%" + (f"  +{len(items) - 1} more" if len(items) > 1 else "")
            room = max(0, width - fm.horizontalAdvance(tail))
            option.text = (fm.elidedText(name, Qt.TextElideMode.ElideRight, room) + tail).strip()


def prediction_view(parent) -> tuple[PredictionTableModel, QSortFilterProxyModel, QTableView]:
    """The model, a sorting proxy and the table view, with columns sized so a file name and
    a long class name ("German shepherd") both show; the top-k list takes the rest."""
    model = PredictionTableModel(parent)
    proxy = QSortFilterProxyModel(parent)
    proxy.setSourceModel(model)
    proxy.setSortRole(SORT_ROLE)
    table = QTableView()
    table.setModel(proxy)
    table.setSortingEnabled(True)
    table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
    table.verticalHeader().setDefaultSectionSize(52)
    table.verticalHeader().hide()
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a file name keeps its end
    table.setIconSize(QSize(48, 48))
    table.setItemDelegateForColumn(TOPK_COL, TopKDelegate(table))
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(TOPK_COL, QHeaderView.ResizeMode.Stretch)
    for col, width in ((THUMB_COL, 56), (FILE_COL, 200), (TRUE_COL, 110), (TOP1_COL, 170),
                       (PROB_COL, 90)):
        header.resizeSection(col, width)
    return model, proxy, table
