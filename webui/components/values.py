"""How values read on a page: exactly as stored, with their unit."""

from __future__ import annotations

from datetime import UTC, datetime

from core.protocol.telemetry import Value


def show_value(value: Value, unit: str = "") -> str:
    """A value as text: decimals keep their scale (21.50 stays 21.50), booleans are words."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return f"{text} {unit}" if unit else text


def when(moment: datetime | None) -> str:
    """A time for people: local clock time, with the date when it is not today."""
    if moment is None:
        return "—"
    local = moment.astimezone()
    if local.date() == datetime.now().astimezone().date():
        return f"{local:%H:%M:%S}"
    return f"{local:%Y-%m-%d %H:%M}"


def when_ms(ts_ms: int) -> str:
    """A sample time (ms since the epoch) for people, as ``when`` shows it."""
    return when(datetime.fromtimestamp(ts_ms / 1000, UTC))
