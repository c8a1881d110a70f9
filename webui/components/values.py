"""How values and times read on a page: values exactly as stored with their unit, times named."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from core.protocol.telemetry import Value
from webui.components.browser_time import known_zone, named
from webui.components.chart_words import state_word


def show_value(value: Value, unit: str = "") -> str:
    """A value as text: decimals keep their scale (21.50 stays 21.50), booleans are the
    states their charts draw (On, Off), with no unit: a state is not a quantity."""
    if isinstance(value, bool):
        return state_word(value)
    return f"{value} {unit}" if unit else str(value)


def when(moment: datetime | None, zone: tzinfo | None = None) -> str:
    """A time for people, its zone named, with the date when it is not today (``named``).

    ``zone`` defaults to the page's (``known_zone``: the browser's, or UTC if chosen).
    """
    return named(moment, known_zone() if zone is None else zone)


def when_ms(ts_ms: int, zone: tzinfo | None = None) -> str:
    """A sample time (ms since the epoch) for people, as ``when`` shows it."""
    return when(datetime.fromtimestamp(ts_ms / 1000, UTC), zone)
