"""Start the Qt application (placeholder window until the main window lands)."""
from __future__ import annotations


def run_app(argv: list[str]) -> int:
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(["TransferLab"])
    label = QLabel("TransferLab — use `python main.py train --help` for now.")
    label.resize(480, 120)
    label.show()
    return app.exec()
