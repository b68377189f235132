"""The Review view's actions on the selected findings: relabel (to the suggested class or
any class), remove, keep, undo and redo. Each runs in a worker thread through the dataset's
core.review session; a relabel whose name is taken in the new class asks before moving the
image under a new name (a collision never overwrites). A mixin of ``ReviewTab``, which
holds the widgets, the session and the entries these methods use."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from gui import review_entries as E
from gui.dialogs import show_error


class ReviewActions:
    def selected(self) -> list[E.Entry]:
        rows = sorted(self.grid.row(i) for i in self.grid.selectedItems())
        return [self.shown[r] for r in rows if r < len(self.shown)]

    def _editable(self) -> bool:
        return (self.session is not None and not self.session.read_only
                and not self.report.editable and "act" not in self.workers)

    def _update_buttons(self) -> None:
        chosen = self.selected() if self.shown else []
        ok = self._editable()
        self.relabel_btn.setEnabled(ok and any(e.suggested for e in chosen))
        self.relabel_to.setEnabled(ok and bool(chosen))
        self.remove_btn.setEnabled(ok and bool(chosen))
        self.keep_btn.setEnabled(ok and bool(chosen))
        self.undo_btn.setEnabled(ok and bool(self.session.undo_label))
        self.redo_btn.setEnabled(ok and bool(self.session.redo_label))
        if ok:
            self.undo_btn.setToolTip(f"{self.session.undo_label} (Ctrl+Z)")
            self.redo_btn.setToolTip(f"{self.session.redo_label} (Ctrl+Shift+Z)")

    def relabel_suggested(self) -> None:
        chosen = [e for e in self.selected() if e.suggested]
        if chosen and self._editable():
            self._relabel([(e.rel, e.given, e.suggested) for e in chosen])

    def relabel_as_index(self, n: int) -> None:
        chosen = self.selected()
        if self.report is None or n >= len(self.report.classes) or not chosen \
                or not self._editable():
            return
        new = self.report.classes[n]
        items = [(e.rel, e.given, new) for e in chosen if e.given and e.given != new]
        if items:
            self._relabel(items)

    def _relabel(self, items, new_names: bool = False) -> None:
        session = self.session

        def task(_state):
            clashes = [] if new_names else session.collisions(items)
            return ("clash", items, clashes) if clashes else \
                ("done", session.relabel(items, new_names=new_names).label)
        self._act(task)

    def remove_selected(self) -> None:
        rels = sorted({e.rel for e in self.selected()})
        if rels and self._editable():
            session = self.session
            self._act(lambda _state: ("done", session.remove(rels).label))

    def keep_selected(self) -> None:
        keys = sorted({e.key for e in self.selected()})
        if keys and self._editable():
            session = self.session
            self._act(lambda _state: ("done", session.keep(keys).label))

    def undo(self) -> None:
        if self._editable() and self.session.undo_label:
            session = self.session
            self._act(lambda _state: ("done", session.undo().label))

    def redo(self) -> None:
        if self._editable() and self.session.redo_label:
            session = self.session
            self._act(lambda _state: ("done", session.redo().label))

    def _act(self, task) -> None:
        self._start("act", task, self._acted, self._act_failed)
        self._update_buttons()

    def _acted(self, result) -> None:
        self.workers.pop("act", None)
        if result[0] == "clash":
            self._ask_new_names(result[1], result[2])
        else:
            self.status.setText(f"Done: {result[1]}. Ctrl+Z undoes it." if not
                                result[1].startswith(("Undo", "Redo")) else result[1] + ".")
            self.refresh()
            self.datasetChanged.emit(self.source)
        self._update_buttons()

    def _act_failed(self, message: str) -> None:
        self.workers.pop("act", None)
        self.refresh()  # a failed change leaves the files as they were: show them so
        self._update_buttons()
        show_error(self, "Review", message)

    def _ask_new_names(self, items, clashes: list[str]) -> None:
        names = ", ".join(clashes[:3]) + (f" and {len(clashes) - 3} more" if len(clashes) > 3
                                          else "")
        box = QMessageBox(QMessageBox.Question, "Name already taken",
                          f"{names} already exist{'s' * (len(clashes) == 1)} in the new class "
                          f"folder. TransferLab never replaces a file.\n\nMove the images "
                          f"under new names (\"name-2.jpg\")?",
                          QMessageBox.Yes | QMessageBox.Cancel, self)
        box.setObjectName("transferlab-message")
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.button(QMessageBox.Yes).setText("Relabel under new names")
        box.accepted.connect(lambda: self._relabel(items, new_names=True))
        box.open()

