"""Old and new telemetry to test retention with, written straight into the tables.

Days are counted back from the real today: the upkeep makes partitions ahead of it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg

from core.db.engine import Database
from core.db.models import QuarantinedSample, TelemetryGap, TelemetryRollup, TelemetrySample
from core.services.telemetry import partitions
from core.services.telemetry.partitions import day_of

NOW = datetime.now(UTC)
TODAY = day_of(NOW)
KEEP = 30  # days
OLD, FIRST_KEPT = TODAY - timedelta(days=KEEP + 1), TODAY - timedelta(days=KEEP)
VALUE = Decimal("41.3750")


def midnight(day: date) -> datetime:
    """``day`` 00:00 UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def connect(database: Database) -> asyncpg.Connection:
    """A plain asyncpg connection to ``database`` (PostgreSQL)."""
    url = database.engine.url.set(drivername="postgresql")
    return await asyncpg.connect(url.render_as_string(hide_password=False))


async def tables(database: Database) -> dict[str, partitions.Partition]:
    """Every day table there is, by name."""
    pg = await connect(database)
    try:
        return {p.name: p for p in await partitions.present(pg)}
    finally:
        await pg.close()


async def add_samples(database: Database, device: str, day: date, count: int) -> None:
    """``count`` samples of ``device`` a minute apart from ``day``'s midnight."""
    if database.dialect == "postgresql":
        pg = await connect(database)
        try:
            await partitions.ensure(pg, [day], database=str(database.engine.url))
        finally:
            await pg.close()
    async with database.session() as session:
        session.add_all(
            TelemetrySample(
                device_id=device,
                stream="s1",
                seq=day.toordinal() * 10_000 + n,
                ts=midnight(day) + timedelta(minutes=n),
                readings={"temp": VALUE, "door": True},
                replayed=False,
                received_at=NOW,
            )
            for n in range(count)
        )


async def add_rollups(database: Database, device: str, channel: str, day: date, count: int) -> None:
    """``count`` minutes of one channel from ``day``'s midnight."""
    async with database.session() as session:
        session.add_all(
            TelemetryRollup(
                device_id=device,
                channel=channel,
                minute=midnight(day) + timedelta(minutes=n),
                min=VALUE,
                max=VALUE,
                sum=VALUE,
                count=1,
                replayed=0,
                last_ts=midnight(day) + timedelta(minutes=n),
                last_kind="decimal",
            )
            for n in range(count)
        )


async def add_quarantined(database: Database, device: str, day: date, count: int) -> None:
    """``count`` quarantined samples of ``device`` received a minute apart from ``day``'s
    midnight (each sampled today: received is what retention goes by)."""
    async with database.session() as session:
        session.add_all(
            QuarantinedSample(
                device_id=device,
                stream="s1",
                seq=day.toordinal() * 10_000 + n,
                ts=NOW,
                reason="bad_value",
                detail="not a number",
                raw='{"temp": "x"}',
                received_at=midnight(day) + timedelta(minutes=n),
            )
            for n in range(count)
        )


async def add_gaps(database: Database, device: str, day: date, count: int) -> None:
    """``count`` gaps of ``device`` reported a minute apart from ``day``'s midnight."""
    async with database.session() as session:
        session.add_all(
            TelemetryGap(
                device_id=device,
                stream="s1",
                first_seq=day.toordinal() * 10_000 + 10 * n,
                last_seq=day.toordinal() * 10_000 + 10 * n + 5,
                reason="outbox_cap",
                received_at=midnight(day) + timedelta(minutes=n),
            )
            for n in range(count)
        )
