"""Presence history to test the offline and availability reports with, at chosen times.

Rows are written as presence and ingest leave them: devices registered at a time, offline
periods (open or ended), samples stored live or replayed, gaps a station reported.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.db.engine import Database
from core.db.models import Device, OfflineEvent, TelemetryGap
from core.protocol.telemetry import Batch, Origin, Sample
from core.rbac import PERMISSIONS
from core.services.actor import Actor
from core.services.telemetry import store

ADMIN = Actor("ada", permissions=frozenset(PERMISSIONS))


def at(text: str) -> datetime:
    """``2026-03-10 00:30`` (or with seconds and a fraction) as an aware UTC time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def add_device(database: Database, device_id: str, *, name: str, created: str) -> None:
    """A device registered at ``created``."""
    async with database.session() as session:
        session.add(
            Device(id=device_id, name=name, mqtt_password_hash="unused", created_at=at(created))
        )


async def add_period(
    database: Database, device_id: str, reason: str, started: str, ended: str | None
) -> None:
    """An offline period as presence records it (None: still open)."""
    async with database.session() as session:
        session.add(
            OfflineEvent(
                device_id=device_id,
                reason=reason,
                started_at=at(started),
                ended_at=None if ended is None else at(ended),
            )
        )


async def add_samples(
    database: Database, device_id: str, origin: Origin, times: list[str], *, first_seq: int
) -> None:
    """One sample at each time, stored as ingest stores a live or a replayed batch."""
    samples = tuple(
        Sample(first_seq + i, (at(t) - store.EPOCH) // timedelta(milliseconds=1), {"temp": 1})
        for i, t in enumerate(times)
    )
    await store.store(database, [Batch(device_id, f"s-{origin}", origin, samples)])


async def add_gap(
    database: Database, device_id: str, first: int, last: int, received: str, stream: str = "s1"
) -> None:
    """Seqs ``first``..``last`` a station reported its cap dropped, received at ``received``."""
    async with database.session() as session:
        session.add(
            TelemetryGap(
                device_id=device_id,
                stream=stream,
                first_seq=first,
                last_seq=last,
                reason="outbox_cap",
                received_at=at(received),
            )
        )
