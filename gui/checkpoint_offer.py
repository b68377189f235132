"""The Train tab's offer to delete a finished run's checkpoint.pt (a mixin): shown once
model.pt exists, with the file's size, and confirmed before anything is deleted."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox


class CheckpointOffer:
    """Uses the tab's ``last_run_dir``, ``running``, ``checkpoint_btn`` and ``append_log``."""

    def _checkpoint(self):
        from core.runs import RunPaths

        paths = RunPaths(self.last_run_dir) if self.last_run_dir else None
        return paths.checkpoint if paths and paths.model.exists() else None

    def _offer_checkpoint(self) -> bool:
        """Offer to delete checkpoint.pt once a run is over and model.pt exists."""
        from core.runs import MODEL_FILE
        from core.data.memory import format_bytes

        path = self._checkpoint()
        if self.running or path is None or not path.exists():
            self.checkpoint_btn.hide()
            return False
        self.checkpoint_btn.setText(f"Delete checkpoint ({format_bytes(path.stat().st_size)})")
        self.checkpoint_btn.setToolTip(
            f"{path.name} (weights, optimizer and freeze state) is kept so this run can be "
            f"continued later; {MODEL_FILE} alone serves predictions.")
        self.checkpoint_btn.show()
        return True

    def delete_checkpoint(self) -> None:
        from core.runs import MODEL_FILE

        path = self._checkpoint()
        if path is None or not path.exists():
            return
        self._confirm = box = QMessageBox(
            QMessageBox.Question, "Delete checkpoint",
            f"Delete {path}?\n\n{MODEL_FILE} stays, so predictions still work, but this run can "
            f"no longer be continued.", QMessageBox.Yes | QMessageBox.Cancel, self)
        box.finished.connect(self._delete_confirmed)
        box.open()  # not exec(): a running event loop keeps the window alive

    def _delete_confirmed(self, _result) -> None:
        box, self._confirm = self._confirm, None
        yes = box.standardButton(box.clickedButton()) == QMessageBox.Yes
        box.deleteLater()
        path = self._checkpoint()
        if yes and path is not None:
            path.unlink(missing_ok=True)
            self.append_log(f"Deleted {path}.")
            self._offer_checkpoint()
