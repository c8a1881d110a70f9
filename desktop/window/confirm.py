"""A question asked before an action that cannot be taken back, without blocking the loop.

``QMessageBox.exec`` would run a nested event loop inside a coroutine; here the box is
opened window-modal and the coroutine awaits its answer, so the agent keeps working
meanwhile. Closing the box any other way than by its action button (Cancel, Escape, the
window's close, ``dismiss`` when the operator signs out) answers no.
"""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QGridLayout, QMessageBox, QSizePolicy, QSpacerItem, QWidget

# Pixels: QMessageBox wraps its text narrow, a sentence per three lines; this reads as prose.
TEXT_WIDTH = 380


class Question:
    """Asks one question at a time over ``parent``."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent
        self.box: QMessageBox | None = None  # the question open now, if any

    async def ask(self, title: str, text: str, *, action: str, detail: str = "") -> bool:
        """Whether the operator pressed ``action`` (the button's text) rather than Cancel."""
        self.dismiss()
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            title,
            text,
            QMessageBox.StandardButton.Cancel,
            self.parent,
        )
        box.setObjectName("question")
        box.setInformativeText(detail)
        go = box.addButton(action, QMessageBox.ButtonRole.DestructiveRole)
        go.setObjectName("question_yes")
        grid = box.layout()
        if isinstance(grid, QGridLayout):  # the box takes no minimum width: a spacer gives one
            wide = QSpacerItem(TEXT_WIDTH, 0, QSizePolicy.Policy.Minimum)
            grid.addItem(wide, grid.rowCount(), 0, 1, grid.columnCount())
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Return does not destroy
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def finished(_: int) -> None:
            if not answered.done():
                answered.set_result(box.clickedButton() is go)

        box.finished.connect(finished)
        self.box = box
        box.open()
        try:
            return await answered
        finally:
            if self.box is box:
                self.box = None
            box.hide()
            box.deleteLater()

    def dismiss(self) -> None:
        """Close the open question, answering no."""
        if self.box is not None:
            self.box.reject()
