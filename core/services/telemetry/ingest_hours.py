"""The hourly ingest summary: per device and UTC hour of receipt, what ingest did.

Rules:
- Counted where it happens: the transaction that stores a batch adds what it newly stored
  (and of those, replayed), newly quarantined, and the seqs of the gaps it newly noted
  (dropped at a station's outbox cap) to its device's hour (``tally``; the writers'
  ``add_hours``). A resend adds nothing, and an hour with nothing has no row.
- ``summarize`` audits each hour once it has ended GRACE ago: it claims the rows
  (``summarized_at``) and writes their entries in one transaction, under the audit log's
  writer lock, so of several server replicas one writes each entry, once.
- Rows go with the telemetry retention (``delete_before``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import IngestHour
from core.protocol.telemetry import Batch
from core.services import audit
from core.services.telemetry.sweep import ACTOR, Deleted, span
from core.services.telemetry.writer import NewGap

ACTION = "telemetry.ingest_summary"
# How long after an hour ends its summary waits: a transaction stamps its samples' receipt
# when it begins, so one of 12:59:59 may commit a little after 13:00. Ingest commits take
# milliseconds (seconds when the database is struggling): two minutes leaves every one of
# them committed, and the summary still comes within minutes.
GRACE = timedelta(minutes=2)
HOUR = timedelta(hours=1)
# Hours one transaction claims and audits at most: after a long outage every device has
# hours waiting, and the audit log's writer lock is held for the whole transaction.
CLAIM_ROWS = 500


@dataclass(frozen=True)
class Summary:
    """One device's hour of ingest, as its audit entry states it."""

    device_id: str
    hour: datetime
    stored: int
    replayed: int  # of those stored
    quarantined: int
    dropped: int  # seqs the station reported dropping at its outbox cap

    def figures(self) -> dict[str, Any]:
        """The audit entry's ``after``."""
        return {
            "hour": self.hour.isoformat(),
            "stored": self.stored,
            "replayed": self.replayed,
            "quarantined": self.quarantined,
            "dropped": self.dropped,
        }


def hour_of(at: datetime) -> datetime:
    """The start of the UTC hour ``at`` falls in."""
    return at.replace(minute=0, second=0, microsecond=0)


def tally(
    batches: Sequence[Batch],
    rows: list[tuple[Any, ...]],
    stored: set[tuple[str, str, int]],
    held: set[tuple[str, str, int]],
    gaps: Iterable[NewGap],
    received_at: datetime,
) -> list[tuple[Any, ...]]:
    """What one commit adds to ``ingest_hours`` (HOUR_COLUMNS order, by device): of the
    sample ``rows`` of ``batches`` (SAMPLE_COLUMNS order), those ``stored``; the ``held``
    in quarantine; the seqs of the new ``gaps``. Devices with nothing have no row."""
    counts: Counter[str] = Counter()
    replayed: Counter[str] = Counter()
    if len(stored) == len(rows) == sum(len(batch.samples) for batch in batches):
        # The usual case, every sample new: counted by the batch, not by the row (counting
        # a thousand rows took ~0.15 ms of the event loop's time).
        for batch in batches:
            counts[batch.device_id] += len(batch.samples)
            if batch.origin == "replay":
                replayed[batch.device_id] += len(batch.samples)
    else:
        for row in rows:
            if (row[0], row[1], row[2]) in stored:
                counts[row[0]] += 1
                replayed[row[0]] += row[5]
    quarantined = Counter(device_id for device_id, _, _ in held)
    dropped: Counter[str] = Counter()
    for device_id, first, last in gaps:
        dropped[device_id] += last - first + 1
    hour = hour_of(received_at)
    devices = sorted(counts.keys() | quarantined.keys() | dropped.keys())
    return [
        (d, hour, counts[d], replayed[d], quarantined[d], dropped[d])
        for d in devices
        if counts[d] or quarantined[d] or dropped[d]
    ]


async def summarize(database: Database, *, now: datetime) -> list[Summary]:
    """Audit every unsummarized hour that ended GRACE before ``now``, each once."""
    done: list[Summary] = []
    while True:
        async with database.session() as session:
            claimed = await _claim(session, now=now)
            for summary in claimed:
                await audit.record(
                    session,
                    actor=ACTOR,
                    action=ACTION,
                    target_type="device",
                    target_id=summary.device_id,
                    after=summary.figures(),
                )
        done.extend(claimed)
        if len(claimed) < CLAIM_ROWS:
            return done


async def _claim(session: AsyncSession, *, now: datetime) -> list[Summary]:
    """Mark up to CLAIM_ROWS due hours summarized and return them, oldest first.

    The audit log's writer lock comes first: a second replica's claim waits for this
    transaction to commit, then finds these rows summarized. (Claiming first, two claims
    locking rows in different orders could deadlock.)
    """
    await audit.lock(session)
    last_due = now - GRACE - HOUR  # the latest hour start that ended GRACE ago
    due = (
        select(IngestHour.device_id, IngestHour.hour)
        .where(IngestHour.summarized_at.is_(None), IngestHour.hour <= last_due)
        .order_by(IngestHour.hour, IngestHour.device_id)
        .limit(CLAIM_ROWS)
    )
    claim = (
        update(IngestHour)
        .where(
            tuple_(IngestHour.device_id, IngestHour.hour).in_(due),
            IngestHour.summarized_at.is_(None),
        )
        .values(summarized_at=now)
        .returning(
            IngestHour.device_id,
            IngestHour.hour,
            IngestHour.stored,
            IngestHour.replayed,
            IngestHour.quarantined,
            IngestHour.dropped,
        )
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(claim)).all()
    return sorted((Summary(*row) for row in rows), key=lambda s: (s.hour, s.device_id))


async def hours(
    session: AsyncSession, *, device_id: str, start: datetime, end: datetime
) -> list[IngestHour]:
    """The device's hours of ingest starting in [start, end), oldest first."""
    query = select(IngestHour).where(
        IngestHour.device_id == device_id, IngestHour.hour >= start, IngestHour.hour < end
    )
    return list(await session.scalars(query.order_by(IngestHour.hour)))


async def delete_before(database: Database, *, before: datetime) -> Deleted:
    """Delete the hours that start before ``before`` (one statement: a row per device-hour),
    audited as the other retention deletes are."""
    started = time.perf_counter()
    async with database.session() as session:
        oldest = await session.scalar(select(func.min(IngestHour.hour)))
        if oldest is None or oldest >= before:
            return Deleted(IngestHour.__tablename__, 0, 0, None, 0.0)
        statement = delete(IngestHour).where(IngestHour.hour < before)
        result = await session.execute(statement.execution_options(synchronize_session=False))
        rows = cast(CursorResult[Any], result).rowcount
        await audit.record(
            session,
            actor=ACTOR,
            action="telemetry.retention.delete",
            target_type="table",
            target_id=IngestHour.__tablename__,
            before={"rows": rows, **span(oldest, before)},
        )
    return Deleted(IngestHour.__tablename__, rows, 1, oldest, time.perf_counter() - started)
