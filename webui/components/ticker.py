"""One timer per page: every live element of the page updates on its tick."""

from __future__ import annotations

import logging
from collections.abc import Callable

from nicegui import ui

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05  # 20 Hz: p99 publish → screen 79 ms (4 Hz: 260); 50 pages 17% of a core


class Ticker:
    """Calls each registered update on one ``ui.timer``; a failing update is logged, not fatal.

    The timer starts once the page is built (``start``): a timer waits for the browser to
    connect, and NiceGUI answers the request as soon as anything waits for that, so a timer
    made earlier would send a half-built page.
    """

    def __init__(self, seconds: float = TICK_SECONDS) -> None:
        self.seconds = seconds
        self._updates: list[Callable[[], None]] = []
        self.timer: ui.timer | None = None

    def start(self) -> None:
        """Start ticking (once, after the page's content is laid out)."""
        if self.timer is None:
            self.timer = ui.timer(self.seconds, self.tick)

    def add(self, update: Callable[[], None]) -> None:
        """Call ``update`` on every tick (and once now, so the page starts filled)."""
        self._updates.append(update)
        update()

    def tick(self) -> None:
        """Run every update once."""
        for update in self._updates:
            try:
                update()
            except Exception:
                log.exception("live update failed")
