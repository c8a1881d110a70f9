"""One timer per page: every live element of the page updates on its tick."""

from __future__ import annotations

import logging
from collections.abc import Callable

from nicegui import ui

log = logging.getLogger(__name__)
TICK_SECONDS = 0.05  # 20 Hz: p99 publish → screen 79 ms (4 Hz: 260); 50 pages 17% of a core
PAUSED = "Live updates paused: the latest data could not be read. Retrying…"
RESUMED = "Live updates resumed."


class Ticker:
    """Calls each registered update on one ``ui.timer``; a failing update is not fatal.

    A tick that fails is said once, not 20 times a second: the first failing tick logs its
    traceback and tells the person (PAUSED); later failing ticks are quiet; the first tick
    that succeeds again says RESUMED. The other updates of a failing tick still run.

    The timer starts once the page is built (``start``): a timer waits for the browser to
    connect, and NiceGUI answers the request as soon as anything waits for that, so a timer
    made earlier would send a half-built page.
    """

    def __init__(self, seconds: float = TICK_SECONDS) -> None:
        self.seconds = seconds
        self._updates: list[Callable[[], None]] = []
        self.timer: ui.timer | None = None
        self.failing = False  # the last tick had an update that raised

    def start(self) -> None:
        """Start ticking (once, after the page's content is laid out)."""
        if self.timer is None:
            self.timer = ui.timer(self.seconds, self.tick)

    def add(self, update: Callable[[], None]) -> None:
        """Call ``update`` on every tick (and once now, so the page starts filled)."""
        self._updates.append(update)
        update()

    def tick(self) -> None:
        """Run every update once; say when updates start failing and when they recover."""
        failure: Exception | None = None
        for update in self._updates:
            try:
                update()
            except Exception as error:
                failure = failure or error
        if failure is not None and not self.failing:
            self.failing = True
            log.error("live updates failing (said once until they recover)", exc_info=failure)
            ui.notify(PAUSED, type="warning")
        elif failure is None and self.failing:
            self.failing = False
            log.info("live updates resumed")
            ui.notify(RESUMED, type="positive")
