"""A QAbstractItemModel over core's LayerTree (as napari's QtNodeTreeModel sits over its
plain-Python tree): it stores nothing of its own and listens for the tree's change events.

Column 0's checkbox means "frozen" (ticked = frozen, partly ticked = some of its parameters
are). Ticking a parent acts on its whole subtree through ``LayerTree.set_trainable``; during a
run the edit is forwarded to the worker instead (``edit_handler``), and the tree updates when
the worker reports the change back.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QAbstractItemModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush

from gui.style import frozen_colours
from core.models.layers import EMPTY, FROZEN, PARTIAL, LayerNode, LayerTree

COLUMNS = ("Layer (✓ = frozen)", "Type", "Output shape", "Parameters", "Trainable")
STATE_TEXT = {FROZEN: "frozen", PARTIAL: "partly", EMPTY: "—", "trainable": "trainable"}
MAX_RANGES = 16
# Qt's enums spelled in full: PySide6 resolves the short spelling (``Qt.DisplayRole``) through
# a slow compatibility look-up, 3-18 µs each, and a view asks ~7 roles of every visible cell
# on each paint (the tree's repaint cost 100+ ms of GUI thread that way).
_R, _F = Qt.ItemDataRole, Qt.ItemFlag
DISPLAY, CHECK_ROLE, TOOLTIP = _R.DisplayRole, _R.CheckStateRole, _R.ToolTipRole
BACKGROUND, FOREGROUND, ALIGNMENT = _R.BackgroundRole, _R.ForegroundRole, _R.TextAlignmentRole
HANDLED_ROLES = {DISPLAY, CHECK_ROLE, TOOLTIP, BACKGROUND, FOREGROUND, ALIGNMENT}
CHECK = {FROZEN: Qt.CheckState.Checked, PARTIAL: Qt.CheckState.PartiallyChecked,
         "trainable": Qt.CheckState.Unchecked}
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
ROW_FLAGS = _F.ItemIsEnabled | _F.ItemIsSelectable
CHECKABLE_FLAGS = ROW_FLAGS | _F.ItemIsUserCheckable


class LayerTreeModel(QAbstractItemModel):
    edited = Signal()  # the user ticked a box and the tree itself was changed

    def __init__(self, tree: LayerTree | None = None, parent=None):
        super().__init__(parent)
        self.tree: LayerTree | None = None
        self.shapes: dict[str, tuple] = {}
        # (path, trainable) -> None; None means "apply to the tree directly"
        self.edit_handler: Callable[[str, bool], None] | None = None
        self.frozen_brushes = tuple(QBrush(c) for c in frozen_colours())
        if tree is not None:
            self.set_tree(tree)

    def set_tree(self, tree: LayerTree | None, shapes: dict | None = None) -> None:
        self.beginResetModel()
        if self.tree is not None and self._on_changed in self.tree.listeners:
            self.tree.listeners.remove(self._on_changed)
        self.tree, self.shapes = tree, dict(shapes or {})
        self.frozen_brushes = tuple(QBrush(c) for c in frozen_colours())
        self._rows = {}
        if tree is not None:
            tree.listeners.append(self._on_changed)
            for node in tree:
                for row, child in enumerate(node.children):
                    self._rows[id(child)] = row
        self.endResetModel()

    # --- structure ----------------------------------------------------------------------
    def _node(self, index: QModelIndex) -> LayerNode | None:
        if not index.isValid():
            return self.tree.root if self.tree else None
        return index.internalPointer()

    def index(self, row: int, column: int, parent=QModelIndex()) -> QModelIndex:
        node = self._node(parent)
        if node is None or not 0 <= row < len(node.children) or not 0 <= column < len(COLUMNS):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row])

    def parent(self, index: QModelIndex = QModelIndex()) -> QModelIndex:  # noqa: A003
        if not index.isValid():
            return QModelIndex()
        node = index.internalPointer()
        parent = node.parent
        if parent is None or parent.parent is None:
            return QModelIndex()
        return self.createIndex(self._rows[id(parent)], 0, parent)

    def rowCount(self, parent=QModelIndex()) -> int:
        if parent.isValid() and parent.column() != 0:
            return 0
        node = self._node(parent)
        return len(node.children) if node is not None else 0

    def columnCount(self, parent=QModelIndex()) -> int:
        return len(COLUMNS)

    def headerData(self, section, orientation, role=DISPLAY):
        if orientation == Qt.Orientation.Horizontal and role == DISPLAY:
            return COLUMNS[section]
        return None

    def index_of(self, path: str, column: int = 0) -> QModelIndex:
        node = self.tree.node(path)
        if node.parent is None:
            return QModelIndex()
        return self.createIndex(self._rows[id(node)], column, node)

    # --- data -----------------------------------------------------------------------------
    def data(self, index: QModelIndex, role=DISPLAY):
        if role not in HANDLED_ROLES or not index.isValid():
            return None  # views ask for many roles per cell; answer the others cheaply
        node: LayerNode = index.internalPointer()
        col, state = index.column(), node.state
        if role == DISPLAY:
            return self._text(node, col, state)
        if role == CHECK_ROLE:
            return CHECK[state] if col == 0 and state != EMPTY else None
        if role == TOOLTIP:
            return f"{node.path}\n{node.total_params:,} parameters ({STATE_TEXT[state]})"
        if state == FROZEN and role in (BACKGROUND, FOREGROUND):
            return self.frozen_brushes[role == FOREGROUND]
        if role == ALIGNMENT and col == 3:
            return RIGHT
        return None

    def text(self, node: LayerNode, col: int) -> str:
        """What column ``col`` shows for ``node``."""
        return self._text(node, col, node.state)

    def _text(self, node: LayerNode, col: int, state: str) -> str:
        if col == 0:
            return node.path
        if col == 1:
            return node.type_name
        if col == 2:
            shape = self.shapes.get(node.path)
            return " × ".join(map(str, shape)) if shape else ""
        if col == 3:
            return f"{node.total_params:,}" if node.total_params else ""
        return STATE_TEXT[state]

    def flags(self, index: QModelIndex):
        if not index.isValid():
            return _F.NoItemFlags
        if index.column() == 0 and index.internalPointer().state != EMPTY:
            return CHECKABLE_FLAGS
        return ROW_FLAGS

    def setData(self, index: QModelIndex, value, role=_R.EditRole) -> bool:
        if role != CHECK_ROLE or not index.isValid() or index.column() != 0:
            return False
        node: LayerNode = index.internalPointer()
        if node.state == EMPTY:
            return False
        frozen = Qt.CheckState(value) != Qt.CheckState.Unchecked
        if self.edit_handler is not None:
            self.edit_handler(node.path, not frozen)
        else:
            self.tree.set_trainable(node.path, not frozen)
            self.edited.emit()
        return True

    def _on_changed(self, paths: list[str]) -> None:
        """The tree changed (from any edit): repaint those rows, every column, with one
        dataChanged per parent (the rows between its first and last changed child)."""
        by_parent: dict[int, list[int]] = {}
        parents = {}
        for path in paths:
            if path:
                node = self.tree.node(path)
                by_parent.setdefault(id(node.parent), []).append(self._rows[id(node)])
                parents[id(node.parent)] = node.parent
        last = len(COLUMNS) - 1
        if len(by_parent) > MAX_RANGES and self.tree.root.children:
            # a spec that touches most of the tree: one range over the top level. Qt views
            # repaint their whole viewport for any multi-row change, children included, and
            # 75 separate ranges (EfficientNet) cost ~30 ms of GUI time during a run
            top = self.tree.root.children
            self.dataChanged.emit(self.createIndex(0, 0, top[0]),
                                  self.createIndex(len(top) - 1, last, top[-1]))
            return
        for key, rows in by_parent.items():
            siblings = parents[key].children
            lo, hi = min(rows), max(rows)
            self.dataChanged.emit(self.createIndex(lo, 0, siblings[lo]),
                                  self.createIndex(hi, last, siblings[hi]))
