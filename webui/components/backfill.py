"""A live page's first picture: what the database stored before it opened, then the hub's.

The hub forgets everything on a restart and holds only what arrived since; the database
holds the minutes before. A page reads the database first, then takes the hub's ring, so
a sample committed in between is in both: it is drawn once (a device's samples are told
apart by their time). What arrives after the ring was read comes from the hub alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from core.services.telemetry.history import StoredSample
from webui.backbone.hub import LivePoint, Reading

SPAN = timedelta(minutes=10)  # as far back as a live chart shows (live_chart.WINDOW_MS)


def fill(stored: Sequence[StoredSample], live: Sequence[LivePoint]) -> list[LivePoint]:
    """The stored samples and the hub's, each time once, oldest first."""
    seen = {sample.ts_ms for sample in stored}
    points = [LivePoint(0, s.ts_ms, s.values, s.replayed) for s in stored]
    points.extend(point for point in live if point.ts_ms not in seen)
    return sorted(points, key=lambda point: point.ts_ms)


def latest(stored: Sequence[StoredSample], live: dict[str, Reading]) -> dict[str, Reading]:
    """Each channel's newest value: the hub's where it has one, else the database's."""
    found: dict[str, Reading] = {}
    for sample in stored:  # oldest first: later samples overwrite
        for channel, value in sample.values.items():
            found[channel] = Reading(value, sample.ts_ms)
    found.update(live)
    return dict(sorted(found.items()))
