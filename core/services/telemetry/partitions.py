"""PostgreSQL's day partitions of ``telemetry_samples``: one per UTC day, made before use.

A partition is named ``telemetry_samples_YYYYMMDD`` and holds [that day 00:00 UTC, the next).
There is no default partition: a sample whose day has no partition is an error, never a
silent catch-all that a later ``CREATE … PARTITION OF`` would have to scan. So ingest asks
``ensure`` for the days of each commit's samples; a process remembers the days it knows,
so that costs nothing once a day exists. Creating a partition locks the parent table
briefly, which is why the server also makes the days ahead before they come.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

AHEAD_DAYS = 7  # days made ahead of today: a week of servers down before ingest must make one
PREFIX = "telemetry_samples_"

_known: set[tuple[str, date]] = set()  # (database URL, day) known to exist


def day_of(moment: datetime) -> date:
    """The UTC day ``moment`` falls in."""
    return moment.astimezone(UTC).date()


def name_of(day: date) -> str:
    """The partition that holds ``day``."""
    return f"{PREFIX}{day:%Y%m%d}"


def create_sql(day: date) -> str:
    """The statement that makes ``day``'s partition if it is missing."""
    end = day + timedelta(days=1)
    return (
        f"CREATE TABLE IF NOT EXISTS {name_of(day)} PARTITION OF telemetry_samples "
        f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00')"
    )


async def ensure(pg: Any, days: Iterable[date], *, database: str) -> None:
    """Make the partitions of ``days`` that do not exist, on asyncpg connection ``pg``.

    Called outside any transaction (each statement commits on its own), before the ingest
    transaction that needs them: a day is remembered only once its partition is committed.
    ``database`` (its URL) tells apart the databases one process writes to.
    """
    for day in sorted(set(days)):
        if (database, day) in _known:
            continue
        await pg.execute(create_sql(day))
        _known.add((database, day))


def forget() -> None:
    """Drop what this process knows (after partitions were dropped, or in tests)."""
    _known.clear()
