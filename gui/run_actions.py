"""The main window's actions on a run folder (a mixin, as gui.inference_models is for the
Inference tab): open it, resume it, evaluate or export its model, and put its recipe back in
the form and the Model tab. Every file is read through core.runs."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog

from gui.dialogs import open_dir, show_error
from gui.settings import add_recent_run


class RunActions:
    """Uses the window's tabs, settings and ``select_tab``."""

    def open_run(self, run_dir: str | None = None) -> None:
        from core.errors import TransferLabError
        from core.runs import RunRecord

        run_dir = run_dir or open_dir(self, "Open a run folder")
        if not run_dir:
            return
        run = RunRecord(run_dir)
        try:
            history = run.history
        except TransferLabError as exc:
            show_error(self, "Cannot open run", str(exc))
            return
        self._show_run_config(run)
        add_recent_run(self.settings, run_dir)
        self.train_tab.show_run(run_dir, history, run.batches, run.freeze_changes)
        if run.has_model and self.evaluate_tab is not None:
            self.evaluate_tab.set_model(str(run.paths.model))
        self.select_tab("train")

    def resume_run(self, run_dir: str) -> None:
        """Continue a run from its checkpoint; a run that did all its planned epochs asks how
        many more. Its files are read once here; the engine checks that no other process
        trains it (the run's lock) and says so through the Train tab's error path."""
        from core.errors import TransferLabError
        from core.runs import RunRecord

        run = RunRecord(run_dir)
        try:
            config, history = run.config, run.history
        except TransferLabError as exc:
            show_error(self, "Cannot resume", str(exc))
            return
        if len(history) < config.epochs:
            self._resume(run, config)
            return
        self._more = dialog = QInputDialog(self)
        dialog.setWindowTitle("Resume run")
        dialog.setLabelText(f"{Path(run_dir).name} has done all its {config.epochs} epochs.\n"
                            f"Train for how many more?")
        dialog.setInputMode(QInputDialog.IntInput)
        dialog.setIntRange(1, 1000)
        dialog.setIntValue(2)
        dialog.intValueSelected.connect(
            lambda n: self._resume(run, config, len(history) + n))
        dialog.open()

    def _resume(self, run, config, epochs: int = 0) -> None:
        if self.train_tab.running:
            show_error(self, "Cannot resume", "A training run is in progress: stop it first.")
            return
        config.epochs = max(config.epochs, epochs)
        self._show_run_config(run)
        add_recent_run(self.settings, str(run.path))
        self.train_tab.resume(str(run.path), config, run.history, run.batches,
                              run.freeze_changes)
        self.select_tab("train")

    def evaluate_run(self, run_dir: str) -> None:
        """Evaluate the run's model.pt on its own validation split."""
        from core.runs import RunPaths

        if not self.evaluate_tab.idle():
            return
        self.evaluate_tab.set_model(str(RunPaths(run_dir).model))
        self.evaluate_tab.set_data(None)
        self.select_tab("evaluate")
        self.evaluate_tab.evaluate()

    def export_run(self, run_dir: str) -> None:
        from core.runs import RunPaths

        if not self.evaluate_tab.idle():
            return
        self.evaluate_tab.set_model(str(RunPaths(run_dir).model))
        self.select_tab("evaluate")
        self.evaluate_tab.choose_export()

    def _show_run_config(self, run) -> None:
        """Put a reopened run's recipe (a RunRecord's) back in the form and the Model tab."""
        from core.errors import TransferLabError
        try:
            config = run.settings
        except TransferLabError:
            return
        self.train_tab.form.set_values(config)
        self.model_tab.set_freeze_spec(config.get("freeze", "backbone"))
        self.model_tab.set_model(config.get("model", "mobilenet_v2"), config.get("weights"))
        self.train_tab.form.update_plan()  # the plan sentence names the run's frozen layers
