"""PostgreSQL's day partitions of ``telemetry_samples``: one per UTC day, made before use.

A partition is named ``telemetry_samples_YYYYMMDD`` and holds [that day 00:00 UTC, the next).
There is no default partition: a sample whose day has no partition is an error, never a
silent catch-all that a later partition would have to scan. So ingest asks ``ensure`` for
the days of each commit's samples, and the server makes the week ahead (``make_ahead``).

Lock rules, measured on PostgreSQL 15 with two writers committing while a 2 s read held
the parent table (as a history query or an export does): ``CREATE TABLE … PARTITION OF``
and ``DROP TABLE`` of a partition take ACCESS EXCLUSIVE on the parent, so they queue
behind the read and every insert queues behind them: ingest stalled 1.8 s. Making a plain
table and then ``ATTACH PARTITION``, and ``DETACH PARTITION … CONCURRENTLY`` before the
drop, take only SHARE UPDATE EXCLUSIVE, which inserts and reads do not wait for: the
slowest commit stayed at its idle level (50-170 ms on these busy 2-core machines). So
partitions are made and dropped only those two ways.

A process remembers the days it has made (``ensure`` costs nothing for them) but only
trusts that memory for yesterday and later: retention never drops those, while another
replica may drop an older day at any time.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database

AHEAD_DAYS = 7  # days made ahead of today: a week of servers down before ingest must make one
PARENT = "telemetry_samples"
PREFIX = f"{PARENT}_"
_NAME = re.compile(rf"^{PREFIX}(\d{{8}})$")
# Two makers of one day (replicas, or ingest and the upkeep) race to create its table: the
# loser fails on the catalog's unique index once the winner commits, then finds it made.
_RACED = (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError)
# Every table named like a partition, and whether it is attached (or half-detached).
_PRESENT = (
    "SELECT c.relname, i.inhrelid IS NOT NULL AS attached, "
    "coalesce(i.inhdetachpending, false) AS detaching "
    "FROM pg_class c LEFT JOIN pg_inherits i "
    f"ON i.inhrelid = c.oid AND i.inhparent = '{PARENT}'::regclass "
    f"WHERE c.relkind = 'r' AND c.relname ~ '^{PREFIX}[0-9]{{8}}$' "
    "AND pg_table_is_visible(c.oid)"
)

_known: set[tuple[str, date]] = set()  # (database URL, day) known to exist


@dataclass(frozen=True)
class Partition:
    """A day's table: attached to ``telemetry_samples``, being detached, or left detached."""

    name: str
    day: date
    attached: bool
    detaching: bool  # a DETACH … CONCURRENTLY was interrupted: FINALIZE completes it


@dataclass(frozen=True)
class Dropped:
    """A partition dropped, with what it held."""

    name: str
    day: date
    rows: int


def day_of(moment: datetime) -> date:
    """The UTC day ``moment`` falls in."""
    return moment.astimezone(UTC).date()


def name_of(day: date) -> str:
    """The partition that holds ``day``."""
    return f"{PREFIX}{day:%Y%m%d}"


def create_sql(day: date) -> str:
    """The statement that makes ``day``'s partition if it is missing, and attaches it."""
    name, end = name_of(day), day + timedelta(days=1)
    return (
        "DO $$BEGIN "
        f"IF to_regclass('{name}') IS NULL THEN "
        f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS); END IF; "
        f"IF NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = '{name}'::regclass) THEN "
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES "
        f"FROM ('{day.isoformat()} 00:00:00+00') TO ('{end.isoformat()} 00:00:00+00'); END IF; "
        "END$$"
    )


async def ensure(pg: Any, days: Iterable[date], *, database: str) -> None:
    """Make the partitions of ``days`` that do not exist, on asyncpg connection ``pg``.

    Called outside any transaction (each statement commits on its own), before the ingest
    transaction that needs them: a day is remembered only once its partition is committed.
    ``database`` (its URL) tells apart the databases one process writes to.
    """
    trusted = day_of(datetime.now(UTC)) - timedelta(days=1)
    for day in sorted(set(days)):
        if day >= trusted and (database, day) in _known:
            continue
        try:
            await pg.execute(create_sql(day))
        except _RACED:
            await pg.execute(create_sql(day))
        _known.add((database, day))


async def make_ahead(pg: Any, today: date, *, database: str) -> None:
    """Make the partitions of ``today`` and the AHEAD_DAYS after it (asyncpg, no transaction)."""
    await ensure(pg, (today + timedelta(days=n) for n in range(AHEAD_DAYS + 1)), database=database)


async def present(pg: Any) -> list[Partition]:
    """Every day table there is, oldest first (asyncpg connection ``pg``)."""
    found = []
    for row in await pg.fetch(_PRESENT):
        match = _NAME.match(row["relname"])
        assert match is not None  # the query matched the same shape
        try:
            day = datetime.strptime(match[1], "%Y%m%d").date()
        except ValueError:  # eight digits that are no date: not ours
            continue
        found.append(Partition(row["relname"], day, row["attached"], row["detaching"]))
    return sorted(found, key=lambda partition: partition.day)


async def drop_before(
    pg: Any,
    database: Database,
    cutoff: date,
    *,
    audit: Callable[[AsyncSession, Dropped], Awaitable[None]],
) -> list[Dropped]:
    """Drop every day table whose upper bound is at or before ``cutoff`` (its day < cutoff).

    Each is first detached concurrently on ``pg`` (asyncpg, outside a transaction: no insert
    or read waits for it), then counted and dropped in a transaction of ``database`` in
    which ``audit`` records it. Safe to repeat: a half-detached table is finalized, a
    detached one dropped.
    """
    dropped = []
    for partition in await present(pg):
        if partition.day >= cutoff:
            break
        if partition.detaching:
            await pg.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition.name} FINALIZE")
        elif partition.attached:
            await pg.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition.name} CONCURRENTLY")
        async with database.session() as session:
            rows = await session.scalar(text(f"SELECT count(*) FROM {partition.name}"))
            await session.execute(text(f"DROP TABLE {partition.name}"))
            gone = Dropped(partition.name, partition.day, int(rows or 0))
            await audit(session, gone)
        dropped.append(gone)
    forget(gone.day for gone in dropped)
    return dropped


def forget(days: Iterable[date] | None = None) -> None:
    """Drop what this process knows of ``days`` (all days when None; after drops, in tests)."""
    if days is None:
        _known.clear()
        return
    gone = set(days)
    _known.difference_update({known for known in _known if known[1] in gone})
