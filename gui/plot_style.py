"""The look of every pyqtgraph plot in the app, set in one place before any plot is made.

Each module that draws imports ``pg`` from here, so the options are applied whichever tab
happens to create its plots first. The background and the axes take the palette's colours,
so charts follow the system's dark mode like the rest of the window.
"""
import pyqtgraph as pg
from PySide6.QtGui import QPalette

from gui.style import palette

_p = palette()
pg.setConfigOptions(background=_p.color(QPalette.ColorRole.Base),
                    foreground=_p.color(QPalette.ColorRole.Text), antialias=True)

__all__ = ["pg"]
