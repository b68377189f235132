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


def dark_palette() -> QPalette:
    """Fusion in dark colours: for ``--color-scheme dark`` where the desktop does not tell Qt
    it is in dark mode (Qt follows it by itself where it does)."""
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    # the fields a shade lighter than the window: Fusion outlines check boxes with the
    # window's colour darkened, which vanished on a darker base (the layer tree's ticks)
    colours = {role.Window: "#2b2d31", role.WindowText: "#e6e6e6", role.Base: "#383a40",
               role.AlternateBase: "#3f4248", role.ToolTipBase: "#33353a",
               role.ToolTipText: "#e6e6e6", role.Text: "#e6e6e6", role.Button: "#35373c",
               role.ButtonText: "#e6e6e6", role.BrightText: "#ff6b6b", role.Link: "#6ea8fe",
               role.Highlight: "#3d6fd1", role.HighlightedText: "#ffffff",
               role.PlaceholderText: "#8a8d93", role.Light: "#4a4d52", role.Midlight: "#404349",
               role.Mid: "#55585e", role.Dark: "#1a1b1e", role.Shadow: "#000000"}
    for r, colour in colours.items():
        p.setColor(r, QColor(colour))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, QColor("#7c7f85"))
    return p
