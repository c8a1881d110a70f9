"""The chart's data: a sliding window of points per numeric channel (no Qt here)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal

from core.protocol.telemetry import Value

WINDOW = 300  # points per channel: five minutes at the default 1 s interval


def numeric(value: Value) -> float | None:
    """A value the chart can draw, or None for a boolean (the table shows those)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return float(value)
    return None


class Series:
    """The last ``window`` samples of every numeric channel seen, on a shared time axis."""

    def __init__(self, window: int = WINDOW) -> None:
        if window < 2:
            msg = f"a chart window needs at least 2 points: {window}"
            raise ValueError(msg)
        self.window = window
        self._points: dict[str, deque[tuple[float, float]]] = {}

    @property
    def channels(self) -> list[str]:
        """Numeric channels in the order they first appeared."""
        return list(self._points)

    def add(self, ts_ms: int, values: Mapping[str, Value]) -> list[str]:
        """Add a sample's numeric values at ``ts_ms``; returns the channels new to the chart."""
        new = []
        for channel in sorted(values):
            y = numeric(values[channel])
            if y is None:
                continue
            if channel not in self._points:
                self._points[channel] = deque(maxlen=self.window)
                new.append(channel)
            self._points[channel].append((ts_ms / 1000, y))
        return new

    def points(self, channel: str) -> tuple[list[float], list[float]]:
        """The channel's x (seconds since the epoch) and y values, oldest first."""
        pairs = self._points.get(channel, ())
        return [x for x, _ in pairs], [y for _, y in pairs]
