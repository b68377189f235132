"""What the screenshot tours share: the real window, styled as the app starts it, a wait
that pumps the event loop until a signal, a condition or a timeout, and a whole-screen
grab (dialogs included) into docs/<prefix>-<name>.png. Run the tours under an X server."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs"


class Tour:
    def __init__(self, prefix: str):
        from PySide6.QtWidgets import QApplication

        from gui.main_window import MainWindow
        from gui.style import STYLESHEET

        self.prefix = prefix
        self.app = QApplication(["TransferLab"])
        self.app.setStyle("Fusion")
        self.app.setStyleSheet(STYLESHEET)
        self.window = w = MainWindow()
        w.resize(1400, 900)
        w.move(0, 0)
        w.show()

    def wait(self, signal=None, ms: int = 60_000, until=None) -> None:
        from PySide6.QtCore import QEventLoop, QTimer

        loop = QEventLoop()
        if signal is not None:
            signal.connect(loop.quit)
        timer = QTimer(singleShot=True, interval=ms)
        timer.timeout.connect(loop.quit)
        timer.start()
        if until is not None:
            poll = QTimer(interval=100)
            poll.timeout.connect(lambda: until() and loop.quit())
            poll.start()
        loop.exec()

    def shoot(self, name: str) -> None:
        self.wait(ms=500)  # let the paint settle
        path = DOCS / f"{self.prefix}-{name}.png"
        self.app.primaryScreen().grabWindow(0).save(str(path))
        print(f"docs/{path.name}", flush=True)

    def load_torch(self) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self.window.start_loading_torch)
        self.wait(self.window.torchReady)
