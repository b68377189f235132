"""Small layout builders the tabs share: a row of widgets and a margin-less column."""
from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLayout, QVBoxLayout, QWidget

STRETCH = None  # an item of ``row``: the free space goes here


def _add(layout, item) -> None:
    """A widget, a layout, (a widget, its stretch) or STRETCH."""
    if item is STRETCH:
        layout.addStretch(1)
    elif isinstance(item, tuple):
        layout.addWidget(*item)
    elif isinstance(item, QLayout):
        layout.addLayout(item)
    else:
        layout.addWidget(item)


def row(*items) -> QHBoxLayout:
    layout = QHBoxLayout()
    for item in items:
        _add(layout, item)
    return layout


def column(*items) -> QWidget:
    """A widget stacking ``items`` top to bottom with no margins of its own (for a splitter's
    pane)."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for item in items:
        _add(layout, item)
    return box
