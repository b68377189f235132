"""The look of every pyqtgraph plot in the app, set in one place.

Each module that draws imports ``pg`` from here and calls ``follow_palette()`` before it
makes a plot: background and axes take the palette's colours, so charts follow the system's
dark mode like the rest of the window.
"""
import pyqtgraph as pg
from PySide6.QtGui import QPalette

from gui.style import palette


def follow_palette() -> None:
    p = palette()
    pg.setConfigOptions(background=p.color(QPalette.ColorRole.Base),
                        foreground=p.color(QPalette.ColorRole.Text), antialias=True)


follow_palette()

__all__ = ["pg", "follow_palette"]
