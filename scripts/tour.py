"""What the screenshot tours share: wait for a signal or a condition with the event loop
running, and grab the whole screen (dialogs and pop-ups included)."""
from __future__ import annotations

from pathlib import Path


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
