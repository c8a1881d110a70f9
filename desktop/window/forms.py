"""What the window's forms share: how an outcome reads, and a button at its own width."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.window.appearance import set_tone
from desktop.window.theme import Tone


def say(label: QLabel, text: str, *, error: bool = False, busy: bool = False) -> None:
    """Show an outcome in ``label``: green when done, blue while under way (``busy``: sent,
    waiting for an answer), bold red when refused or failed."""
    set_tone(label, Tone.BAD if error else Tone.BUSY if busy else Tone.OK)
    label.setText(text)


def left(button: QPushButton) -> QWidget:
    """A button at its own width, on the left of its row."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(button)
    layout.addStretch(1)
    return row
