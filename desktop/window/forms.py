"""What the window's forms share: how an outcome reads, and a button at its own width."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

OK_STYLE = "QLabel { color: #2e7d32; }"
ERROR_STYLE = "QLabel { color: #c62828; font-weight: bold; }"


def say(label: QLabel, text: str, *, error: bool = False) -> None:
    """Show an outcome in ``label``: green when done, bold red when refused or failed."""
    label.setStyleSheet(ERROR_STYLE if error else OK_STYLE)
    label.setText(text)


def left(button: QPushButton) -> QWidget:
    """A button at its own width, on the left of its row."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(button)
    layout.addStretch(1)
    return row
