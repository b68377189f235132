"""The layer tree panel of the Model tab: presets, filter, expand depth and a summary line.

Before a run, edits change the Model tab's own structure-only copy of the network and become
the run's freeze spec. During a run, edits are forwarded to the worker (applied at the next
batch boundary); the tree follows the worker's reports, so it always shows what really trains.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu,
                               QToolButton, QTreeView, QVBoxLayout, QWidget)

from gui.layer_tree_model import LayerTreeModel

PRESETS = (("Freeze backbone", "backbone", "The lesson's phase 1: everything but the head"),
           ("Unfreeze all", "none", "Everything trains"),
           ("Freeze through selected", "through",
            "Freeze the selected layer and every layer before it (spec through:LAYER)"),
           ("Freeze BatchNorm only", "bn", "Only BatchNorm layers stay fixed"))


class LayerPanel(QWidget):
    specChanged = Signal(str)  # the frozen spec after a user edit

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = LayerTreeModel()
        self.head, self.arch = "", None
        self.forward_to: Callable[[str | None, str | None, bool], None] | None = None
        self.is_paused: Callable[[], bool] = lambda: False
        self.pending = 0  # edits sent to a running worker that it has not reported back yet
        # No sort/filter proxy: it made each paint ask the model for ~2,000 indexes (a 50 ms
        # repaint under load); the filter hides rows instead (names and types never change)
        self.view = QTreeView()
        self.view.setModel(self.model)
        self.view.setAlternatingRowColors(True)
        self.view.setUniformRowHeights(True)
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        header = self.view.header()
        header.setSectionResizeMode(0, QHeaderView.Interactive)
        header.resizeSection(0, 260)
        # widths are fitted once per tree (set_tree): ResizeToContents would re-measure every
        # row on each change and stall the GUI while a run updates the tree

        self.summary = QLabel("The layer tree appears once PyTorch has loaded.")
        self.summary.setObjectName("summary")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter layers (name or type)…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.apply_filter)
        self.actions = {}
        bar = QHBoxLayout()
        for title, key, tip in PRESETS:
            self.actions[key] = act = QAction(title, self)
            act.setToolTip(tip)
            act.triggered.connect(lambda _=False, k=key: self.apply_preset(k))
            button = QToolButton()
            button.setDefaultAction(act)
            bar.addWidget(button)
        bar.addStretch(1)
        for title, depth in (("Depth 1", 0), ("Depth 2", 1), ("All", -1)):
            button = QToolButton()
            button.setText(title)
            button.clicked.connect(lambda _=False, d=depth: self.expand(d))
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.filter)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        self._summary_timer = QTimer(self, singleShot=True, interval=0)
        self._summary_timer.timeout.connect(self.update_summary)
        self.model.dataChanged.connect(lambda *_: self._summary_timer.start())
        self.model.edited.connect(lambda: self.specChanged.emit(self.tree.frozen_spec()))
        self.model.modelReset.connect(self.update_summary)

    @property
    def tree(self):
        return self.model.tree

    def set_tree(self, tree, shapes: dict, head: str, arch: str | None = None) -> None:
        self.head, self.arch = head, arch
        self.model.set_tree(tree, shapes)
        self._fit_columns()
        self.expand(0)
        self.apply_filter(self.filter.text())
        self.update_summary()

    def apply_filter(self, text: str) -> None:
        """Show the layers whose name or type holds ``text`` (any case), with their
        ancestors (expanded, so the matches show) and descendants; empty: every layer."""
        if self.tree is None:
            return
        needle = text.strip().lower()

        def visit(node, parent_matched: bool) -> bool:
            matched = parent_matched or not needle or needle in node.path.lower() \
                or needle in node.type_name.lower()
            shown = [visit(child, matched) for child in node.children]
            keep = matched or any(shown)
            if node.parent is not None:
                index = self.model.index_of(node.path)
                self.view.setRowHidden(index.row(), index.parent(), not keep)
                if needle and any(shown):
                    self.view.expand(index)
            return keep

        visit(self.tree.root, False)

    def visible_paths(self) -> list[str]:
        """The layers the filter leaves in the tree (expanded or not)."""
        return [n.path for n in self.tree if n.parent is not None and not
                self.view.isRowHidden(self.model.index_of(n.path).row(),
                                      self.model.index_of(n.path).parent())]

    def _fit_columns(self) -> None:
        """Columns 1-3 as wide as their longest text, measured here: resizeColumnToContents
        lays out every row of the fully expanded tree, 130-230 ms of GUI thread per network.
        Only the longest few texts of a column are measured (a proportional font can make a
        slightly shorter text wider, never by more than a few characters)."""
        fm, m = self.view.fontMetrics(), self.model
        nodes = [n for n in self.tree if n.parent is not None]
        for col in (1, 2, 3):
            texts = {m.headerData(col, Qt.Orientation.Horizontal) or ""} | \
                {m.text(n, col) for n in nodes}
            longest = sorted(texts, key=len)[-8:]
            self.view.setColumnWidth(col, max(fm.horizontalAdvance(t) for t in longest) + 12)

    def expand(self, depth: int) -> None:
        self.view.collapseAll()
        if depth < 0:
            self.view.expandAll()
        else:
            self.view.expandToDepth(depth)

    def update_summary(self) -> None:
        if self.tree is None:
            return
        frozen, total = self.tree.counts()
        share = 100.0 * frozen / total if total else 0.0
        text = (f"frozen {frozen:,} / {total:,} parameters ({share:.1f}%) · "
                f"{self.tree.trainable_tensors()} trainable tensors")
        if self.pending:
            text += (" · queued: applies when training resumes" if self.is_paused()
                     else " · queued: applies at the next batch")
        self.summary.setText(text)

    # --- during a run -----------------------------------------------------------------------
    def attach(self, forward, is_paused: Callable[[], bool]) -> None:
        """Send edits to a running worker (``forward(spec, path, trainable)``); each shows at
        once on this tree, marked queued until the worker reports it (``reported``)."""
        self.forward_to, self.is_paused, self.pending = forward, is_paused, 0
        self.model.edit_handler = lambda path, trainable: self.apply_spec(None, path, trainable)

    def detach(self) -> None:
        self.forward_to, self.model.edit_handler, self.pending = None, None, 0
        self.update_summary()

    def reported(self, frozen_spec: str, by_user: bool) -> None:
        """The worker applied a change: once none is pending, show exactly what it reports."""
        if by_user:
            self.pending = max(0, self.pending - 1)
        if not self.pending and self.tree is not None and self.tree.frozen_spec() != frozen_spec:
            from core.errors import TransferLabError

            try:
                self.tree.apply_spec(frozen_spec, self.head, self.arch)
            except TransferLabError:
                return  # a resumed run of another network, whose tree is still being built
        self.update_summary()

    def selected_path(self) -> str | None:
        rows = self.view.selectionModel().selectedRows(0) if self.view.selectionModel() else []
        if not rows:
            return None
        return rows[0].internalPointer().path

    def apply_preset(self, key: str) -> None:
        """Apply a named preset; "through" freezes the selected layer and all before it."""
        if self.tree is None:
            return
        if key == "through":
            path = self.selected_path()
            if not path:
                self.summary.setText("Select a layer first, then “Freeze through selected”.")
                return
            key = f"through:{path}"
        self.apply_spec(key)

    def apply_spec(self, spec: str | None, path: str | None = None,
                   trainable: bool = False) -> None:
        """Freeze exactly ``spec`` (or switch the subtree at ``path``)."""
        with self.tree.batch():
            if spec is not None:
                self.tree.apply_spec(spec, self.head, self.arch)
            if path is not None:
                self.tree.set_trainable(path, trainable)
        if self.forward_to is not None:
            self.pending += 1
            self.forward_to(spec, path, trainable)
            self.update_summary()
            return
        self.specChanged.emit(self.tree.frozen_spec())

    def _context_menu(self, pos) -> None:
        menu = QMenu(self)
        for act in self.actions.values():
            menu.addAction(act)
        menu.exec(self.view.viewport().mapToGlobal(pos))
