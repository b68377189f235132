"""A calm look on top of Qt's Fusion style, in the palette's own colours.

Nothing here names a light colour: backgrounds and borders are palette roles (or mixes of
them), so the window reads as well in the system's dark mode as in a light one.
"""
from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette

STYLESHEET = """
QMainWindow, QWidget { font-size: 10pt; }
QTabBar::tab { padding: 7px 18px; }
QTabBar::tab:selected { font-weight: bold; }
QGroupBox { font-weight: bold; border: 1px solid palette(mid); border-radius: 6px;
            margin-top: 10px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; }
QPushButton { padding: 5px 12px; }
QPushButton#primary { background: #2563eb; color: white; border-radius: 4px;
                      font-weight: bold; padding: 6px 14px; }
QPushButton#primary:disabled { background: palette(mid); color: palette(button-text); }
QLabel#note { background: palette(alternate-base); border: 1px solid #d8a928;
              border-radius: 6px; padding: 8px; }
QLabel#dropHint { border: 2px dashed palette(mid); border-radius: 10px; padding: 28px;
                  font-size: 12pt; background: palette(alternate-base); }
"""


def palette() -> QPalette:
    return QGuiApplication.palette()


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved ``t`` of the way to ``b``."""
    return QColor.fromRgbF(*(x + (y - x) * t for x, y in zip(a.getRgbF(), b.getRgbF())))


def is_dark(p: QPalette | None = None) -> bool:
    p = p or palette()
    return p.color(QPalette.ColorRole.Window).lightnessF() < 0.5


def frozen_colours(p: QPalette | None = None) -> tuple[QColor, QColor]:
    """(background, text) of a frozen layer's row: a tint of the selection colour, and the
    text a little towards the background."""
    p = p or palette()
    base, text = p.color(QPalette.ColorRole.Base), p.color(QPalette.ColorRole.Text)
    return mix(base, p.color(QPalette.ColorRole.Highlight), 0.16), mix(text, base, 0.3)


def text_colour(p: QPalette | None = None) -> QColor:
    return (p or palette()).color(QPalette.ColorRole.WindowText)


def error_colour() -> str:
    """A red that reads on the window's background, light or dark."""
    return "#ff6b6b" if is_dark() else "#b00020"
