"""A device's identity conflict as a red chip, shown while two stations use its credentials."""

from __future__ import annotations

from nicegui import ui

from webui.backbone.identity import Conflict
from webui.components.values import when


def describe(conflict: Conflict | None) -> str:
    """The chip's text ("" while there is no conflict)."""
    if conflict is None:
        return ""
    return (
        f"identity conflict: {conflict.stations} stations use these credentials"
        f" since {when(conflict.since)}"
    )


class ConflictChip:
    """A chip hidden until a conflict lasts; changes only when what it shows changes."""

    def __init__(self, marker: str) -> None:
        self.chip = ui.chip(icon="report", color="negative", text_color="white").mark(marker)
        self.chip.props("dense square")
        self.chip.set_visibility(False)
        self._shown = ""

    def show(self, conflict: Conflict | None) -> None:
        """Show ``conflict``, or hide the chip when None (sends nothing when unchanged)."""
        text = describe(conflict)
        if text != self._shown:
            self._shown = text
            self.chip.text = text
            self.chip.set_visibility(bool(text))
