"""What the screenshot tours share: the real window, styled as the app starts it, a wait
that pumps the event loop until a signal, a condition or a timeout, and a whole-screen
grab (dialogs included) into docs/<prefix>-<name>.png. Run the tours under an X server."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DOCS = REPO / "docs"


def wait(signal=None, ms: int = 60_000, until=None) -> None:
    """Run the event loop until ``signal`` fires, ``until()`` holds, or ``ms`` have passed."""
    from PySide6.QtCore import QEventLoop, QTimer

    if until is not None and until():
        return
    loop = QEventLoop()
    if signal is not None:
        signal.connect(loop.quit)
    timer = QTimer(singleShot=True, interval=ms)
    timer.timeout.connect(loop.quit)
    timer.start()
    poll = QTimer(interval=100)
    if until is not None:
        poll.timeout.connect(lambda: until() and loop.quit())
        poll.start()
    loop.exec()
    poll.stop()
    if signal is not None:
        signal.disconnect(loop.quit)


def grab_screen(app, path: Path) -> None:
    wait(ms=500)  # let the paint settle
    app.primaryScreen().grabWindow(0).save(str(path))
    print(path, flush=True)


class Tour:
    """The app's main window, shown at 1400 x 900, and its screenshots under ``prefix``."""

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

    @staticmethod
    def wait(signal=None, ms: int = 60_000, until=None) -> None:
        wait(signal, ms, until)

    def shoot(self, name: str) -> None:
        grab_screen(self.app, DOCS / f"{self.prefix}-{name}.png")

    def load_torch(self) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, self.window.start_loading_torch)
        self.wait(self.window.torchReady)
