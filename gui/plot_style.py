"""The look of every pyqtgraph plot in the app, set in one place before any plot is made.

Each module that draws imports ``pg`` from here, so the options are applied whichever tab
happens to create its plots first.
"""
import pyqtgraph as pg

pg.setConfigOptions(background="w", foreground="#333", antialias=True)

__all__ = ["pg"]
