"""The chart's time axis: wall-clock times in the station's local zone, not raw seconds.

pyqtgraph's ``DateAxisItem`` places ticks on whole local seconds, minutes, hours and days;
this axis keeps that placement and writes every tick below a day as ``HH:MM:SS`` (with
the tenths or hundredths a sub-second view needs), so a fast station's chart never reads
"53.290". The zone is not repeated on every tick: ``zone_label`` names it once, for the
axis label.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyqtgraph as pg
from pyqtgraph.graphicsItems.DateAxisItem import (
    DAY_HOUR_ZOOM_LEVEL,
    DAY_SPACING,
    HMS_ZOOM_LEVEL,
    HOUR_MINUTE_ZOOM_LEVEL,
    MONTH_DAY_ZOOM_LEVEL,
    MONTH_SPACING,
    MS_ZOOM_LEVEL,
    YEAR_MONTH_ZOOM_LEVEL,
    YEAR_SPACING,
    ZoomLevel,
)

CLOCK = "%H:%M:%S"
# Each zoom level's widest label: pyqtgraph spaces the ticks so that many pixels fit.
_WIDEST = {
    id(YEAR_MONTH_ZOOM_LEVEL): "YYYY",
    id(MONTH_DAY_ZOOM_LEVEL): "00 MMM",
    id(DAY_HOUR_ZOOM_LEVEL): "99:99:99",
    id(HOUR_MINUTE_ZOOM_LEVEL): "99:99:99",
    id(HMS_ZOOM_LEVEL): "99:99:99",
    id(MS_ZOOM_LEVEL): "99:99:99.999",
}


def tick_text(seconds: float, spacing: float) -> str:
    """One tick's text: a date for ticks a day or more apart, else the local time of day."""
    at = datetime.fromtimestamp(seconds)
    if spacing >= YEAR_SPACING:
        return at.strftime("%Y")
    if spacing >= MONTH_SPACING:
        return at.strftime("%b %Y")
    if spacing >= DAY_SPACING:
        return at.strftime("%d %b")
    if spacing >= 1:
        return at.strftime(CLOCK)
    return f"{at:{CLOCK}}.{at.microsecond // 1000:03d}"


def tick_texts(values: Sequence[float], spacing: float) -> list[str]:
    """Every tick's text; sub-second ticks drop the trailing zeros they all share
    ("12:00:00.5", not "12:00:00.500")."""
    texts = [tick_text(value, spacing) for value in values]
    if spacing >= 1 or not texts:
        return texts
    for _ in range(3):  # milliseconds: at most three digits to drop
        if not all(text.endswith("0") for text in texts):
            break
        texts = [text[:-1] for text in texts]
    return [text.removesuffix(".") for text in texts]


def zone_label(at: float | None = None) -> str:
    """The axis label naming the local zone in effect at ``at`` (now by default)."""
    zone = datetime.fromtimestamp(time.time() if at is None else at).astimezone().tzname()
    return f"local time ({zone})"


class ClockAxis(pg.DateAxisItem):
    """A bottom axis over seconds since the epoch, ticked in local wall-clock time."""

    zoomLevels: dict[float, Any]  # pyqtgraph's: the widest tick spacing → its zoom level

    def __init__(self) -> None:
        super().__init__(orientation="bottom")
        self.zoomLevels = {
            spacing: ZoomLevel(level.tickSpecs, _WIDEST.get(id(level), level.exampleText))
            for spacing, level in self.zoomLevels.items()
        }

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """Tick texts for ``values``, ``spacing`` seconds apart (pyqtgraph's hook)."""
        return tick_texts(values, spacing)
