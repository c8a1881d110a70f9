"""History benchmark: a week of one device at 1 Hz x 10 channels, read back in 500 buckets.

Loads the week (604,800 samples, 6,048,000 points) with its minute rollups into a database of
its own on each backend, COPY on PostgreSQL and executemany on SQLite, the rollups computed
as the writer keeps them (min, max, sum, count per channel and minute, booleans as 0/1),
and checks them by reading the last hour both ways: whole minutes from the rollups against
half minutes from the samples. Then times ``history.downsample`` through a session, as the
API calls it, over the week's last minute, hour, day and week, plus the longest range still
read from raw samples (``switch``): p50 of --repeat runs after one warm-up, the ranges taken
in turn within each run. Storage per point: the samples' partitions and the rollups on
PostgreSQL (``pg_total_relation_size``), the whole file on SQLite.

    python -m bench.history [--days 7 --channels 10 --buckets 500 --repeat 21]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from bench.stack import DEFAULT_DATABASE, database_of_its_own
from core.db import migrations
from core.db.engine import Database
from core.db.models import Device
from core.db.types import readings_json
from core.services.actor import Actor
from core.services.telemetry import history, partitions
from core.services.telemetry.writer import SAMPLE_COLUMNS
from core.settings import Settings

DEVICE = "bench-history"
STREAM = "bench"
DECIMALS = 6  # ch0..ch5 three-place decimals (temperatures), then integers, a boolean last
READER = Actor("bench", permissions=frozenset({"telemetry:read"}))
REPLAYED_DAY = 3  # that day's samples arrived by replay, so the flag is not constant
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime stores on SQLite
ROLLUP_COLUMNS = (
    "device_id",
    "channel",
    "minute",
    "min",
    "max",
    "sum",
    "count",
    "replayed",
    "last_ts",
    "last_kind",
)
RANGES = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}


@dataclass(frozen=True)
class Week:
    """What is loaded: ``days`` of 1 Hz samples of ``channels`` channels ending at ``end``."""

    days: int
    channels: int
    end: datetime

    @property
    def start(self) -> datetime:
        """The first sample's time."""
        return self.end - timedelta(days=self.days)

    @property
    def points(self) -> int:
        """Channel values loaded."""
        return self.days * 86_400 * self.channels

    def kind(self, channel: int) -> str:
        """The channel's value type."""
        if channel < min(DECIMALS, self.channels - 1):
            return "decimal"
        return "integer" if channel < self.channels - 1 else "boolean"


def _value(kind: str, t: int, channel: int) -> int:
    """Channel ``channel`` at second ``t``: decimals in thousandths, booleans as 0/1."""
    if kind == "decimal":
        return 20_000 + (t * (37 + 11 * channel)) % 10_007
    if kind == "integer":
        return (t * (13 + channel)) % 5_000
    return (t // 17) % 2


def _spelled(kind: str, value: int) -> Any:
    """A value as the readings JSON holds it: decimals as exact strings."""
    if kind == "decimal":
        return f"{value // 1000}.{value % 1000:03d}"
    return value == 1 if kind == "boolean" else value


def _number(kind: str, value: int) -> Decimal:
    return Decimal(value).scaleb(-3) if kind == "decimal" else Decimal(value)


def _days(week: Week) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Each day's sample rows and rollup rows (SAMPLE_COLUMNS, ROLLUP_COLUMNS order)."""
    kinds = [week.kind(c) for c in range(week.channels)]
    for day in range(week.days):
        samples: list[tuple[Any, ...]] = []
        minutes: list[tuple[Any, ...]] = []
        replayed = day == REPLAYED_DAY
        for minute in range(day * 1440, (day + 1) * 1440):
            first = minute * 60
            at = week.start + timedelta(minutes=minute)
            columns = [
                [_value(k, t, c) for t in range(first, first + 60)] for c, k in enumerate(kinds)
            ]
            for s in range(60):
                readings = {f"ch{c}": _spelled(k, columns[c][s]) for c, k in enumerate(kinds)}
                ts = at + timedelta(seconds=s)
                row = (
                    DEVICE,
                    STREAM,
                    first + s + 1,
                    ts,
                    readings_json(readings),
                )
                samples.append((*row, replayed, ts))
            for c, (kind, values) in enumerate(zip(kinds, columns, strict=True)):
                low, high, total = (
                    _number(kind, v) for v in (min(values), max(values), sum(values))
                )
                last = at + timedelta(seconds=59)
                minutes.append(
                    (DEVICE, f"ch{c}", at, low, high, total, 60, 60 * replayed, last, kind)
                )
        yield samples, minutes


# -- PostgreSQL ---------------------------------------------------------------------------


async def _pg_load(url: str, week: Week) -> None:
    """The week by COPY, one transaction per day, its day partitions made first."""
    connection = await asyncpg.connect(url)
    try:
        days = {partitions.day_of(week.start + timedelta(days=d)) for d in range(week.days)}
        await partitions.ensure(connection, days, database=url)
        for samples, minutes in _days(week):
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "telemetry_samples", records=samples, columns=SAMPLE_COLUMNS
                )
                await connection.copy_records_to_table(
                    "telemetry_rollups", records=minutes, columns=ROLLUP_COLUMNS
                )
        # Autovacuum's work, done now: hint bits and the visibility map, as a week in service has.
        await connection.execute("VACUUM (ANALYZE) telemetry_samples, telemetry_rollups")
    finally:
        await connection.close()


async def _pg_bytes(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        samples = await connection.fetchval(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'telemetry_samples'::regclass"
        )
        rolled = await connection.fetchval("SELECT pg_total_relation_size('telemetry_rollups')")
        return {"samples": int(samples), "rollups": int(rolled)}
    finally:
        await connection.close()


# -- SQLite -------------------------------------------------------------------------------


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(SQLITE_TIME)


def _sqlite_minute(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A rollup row as SQLite stores it: times as text, exact decimals as text."""
    device_id, channel, minute, low, high, total, count, replayed, last_ts, kind = row
    times = (_sqlite_time(minute), _sqlite_time(last_ts))
    return (
        device_id,
        channel,
        times[0],
        str(low),
        str(high),
        str(total),
        count,
        replayed,
        times[1],
        kind,
    )


def _sqlite_load(path: Path, week: Week) -> None:
    """The week by executemany, one transaction per day."""
    migrations.upgrade(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        for samples, minutes in _days(week):
            with connection:
                connection.executemany(
                    f"INSERT INTO telemetry_samples ({', '.join(SAMPLE_COLUMNS)}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (d, s, q, _sqlite_time(t), r, int(p), _sqlite_time(a))
                        for d, s, q, t, r, p, a in samples
                    ],
                )
                connection.executemany(
                    f"INSERT INTO telemetry_rollups ({', '.join(ROLLUP_COLUMNS)}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [_sqlite_minute(row) for row in minutes],
                )
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


# -- timing -------------------------------------------------------------------------------


async def _downsample(
    database: Database, channel: str, start: datetime, end: datetime, buckets: int
) -> list[history.Bucket]:
    async with database.session() as session:
        return await history.downsample(
            session,
            actor=READER,
            device_id=DEVICE,
            channel=channel,
            start=start,
            end=end,
            buckets=buckets,
        )


async def _check_rollups(database: Database, week: Week) -> None:
    """The last hour in minutes from the rollups equals it in half minutes from the samples."""
    start = week.end - timedelta(hours=1)
    assert history.plan(start, week.end, 60).rollups
    assert not history.plan(start, week.end, 120).rollups
    for channel in {0, week.channels - 2, week.channels - 1}:  # a decimal, an integer, a boolean
        minutes = await _downsample(database, f"ch{channel}", start, week.end, 60)
        halves = await _downsample(database, f"ch{channel}", start, week.end, 120)
        assert len(minutes) == 60 and len(halves) == 120
        for minute, a, b in zip(minutes, halves[::2], halves[1::2], strict=True):
            mean = (a.mean * a.count + b.mean * b.count) / (a.count + b.count)
            assert (minute.count, minute.min, minute.max) == (
                a.count + b.count,
                min(a.min, b.min),
                max(a.max, b.max),
            )
            assert abs(minute.mean - mean) <= 1e-9 * abs(mean), (channel, minute, a, b)


async def _time_ranges(url: str, week: Week, args: argparse.Namespace) -> dict[str, float]:
    """p50 milliseconds of each range (and ``switch``), through history.downsample."""
    database = Database(Settings(database_url=url).async_database_url)
    switch = min(history.ROLLUPS_FROM * args.buckets - timedelta(milliseconds=1), history.RAW_SPAN)
    try:
        async with database.session() as session:
            session.add(Device(id=DEVICE, mqtt_password_hash="unused"))
        await _check_rollups(database, week)
        ranges = {**RANGES, "switch": switch}
        for name, span in ranges.items():
            rolled = history.plan(week.end - span, week.end, args.buckets).rollups
            assert rolled == (name in ("day", "week")), name
        times: dict[str, list[float]] = {name: [] for name in ranges}
        # Ranges taken in turn within each run, so a burst of load elsewhere on the machine
        # falls on all of them alike; the channel changes from run to run.
        for run in range(args.repeat + 1):
            channel = f"ch{run % week.channels}"
            for name, span in ranges.items():
                began = time.perf_counter()
                found = await _downsample(
                    database, channel, week.end - span, week.end, args.buckets
                )
                times[name].append(time.perf_counter() - began)
                expected = min(span, week.end - week.start) // timedelta(seconds=1)
                assert sum(b.count for b in found) == expected, (name, found)
        return {f"{name}_ms": statistics.median(t[1:]) * 1000 for name, t in times.items()}
    finally:
        await database.close()


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Both backends; returns the figures (PostgreSQL's unprefixed, SQLite's ``sqlite_``)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    week = Week(args.days, args.channels, today)
    figures: dict[str, float] = {}
    async with database_of_its_own(args.database_url) as url:
        await _pg_load(url, week)
        figures |= await _time_ranges(url, week, args)
        sizes = await _pg_bytes(url)
    figures["bytes_per_point"] = (sizes["samples"] + sizes["rollups"]) / week.points
    figures["rollup_bytes_per_point"] = sizes["rollups"] / week.points
    with tempfile.TemporaryDirectory(prefix="pp-bench-history-") as workdir:
        path = Path(workdir) / "history.db"
        await asyncio.to_thread(_sqlite_load, path, week)
        timed = await _time_ranges(f"sqlite:///{path}", week, args)
        figures |= {f"sqlite_{k}": v for k, v in timed.items()}
        size = await asyncio.to_thread(os.path.getsize, path)
        figures["sqlite_bytes_per_point"] = size / week.points
    return figures


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--buckets", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=21, help="timed runs per range")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="a PostgreSQL server; the bench creates and drops its own database there",
    )
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    points = args.days * 86_400 * args.channels
    print(f"history: {points:,} points, {args.buckets} buckets, p50 of {args.repeat} runs")
    for name in (*RANGES, "switch"):
        pg, lite = figures[f"{name}_ms"], figures[f"sqlite_{name}_ms"]
        print(f"  {name:<7} PostgreSQL {pg:>8.1f} ms   SQLite {lite:>8.1f} ms")
    print(
        f"  storage PostgreSQL {figures['bytes_per_point']:.1f} B/point "
        f"(rollups {figures['rollup_bytes_per_point']:.1f}), "
        f"SQLite {figures['sqlite_bytes_per_point']:.1f} B/point"
    )
    ratio = figures["week_ms"] / figures["hour_ms"]
    print(f"  week / hour on PostgreSQL: {ratio:.2f} (target ≤ 2, week ≤ 100 ms)")
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
