"""A device's presence as a coloured badge: online, offline (why), stale, or not heard."""

from __future__ import annotations

from nicegui import ui

from webui.backbone.presence import DeviceState

_COLORS = {"online": "positive", "stale": "warning", "lost": "negative", "clean": "grey-7"}


def describe(state: DeviceState | None) -> tuple[str, str]:
    """The badge's text and colour for a presence state (None: nothing heard since start)."""
    if state is None:
        return "not heard", "grey-5"
    if state.status == "online":
        return "online", _COLORS["online"]
    if state.status == "stale":
        return "stale", _COLORS["stale"]
    reason = state.reason or "lost"
    return f"offline · {reason}", _COLORS.get(reason, "negative")


class PresenceBadge:
    """A badge that changes only when the presence it shows changes."""

    def __init__(self, marker: str) -> None:
        self.badge = ui.badge().mark(marker)
        self._shown: tuple[str, str] | None = None

    def show(self, state: DeviceState | None) -> None:
        """Show ``state`` (sends nothing to the browser when unchanged)."""
        text, color = describe(state)
        if (text, color) != self._shown:
            self._shown = (text, color)
            self.badge.text = text
            self.badge.props(f"color={color}")
