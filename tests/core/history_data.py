"""Telemetry to test history and export with: one device, samples seconds after T0.

T0 is a whole minute, so minute rollups line up with buckets counted from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from core.db.engine import Database
from core.db.models import Device
from core.protocol.telemetry import Batch, Origin, Sample, Value
from core.rbac import PERMISSIONS
from core.services.actor import Actor
from core.services.telemetry import store

ADMIN = Actor("ada", permissions=frozenset(PERMISSIONS))
T0 = datetime(2025, 11, 26, 8, 0, tzinfo=UTC)
DEVICE = "press-07"


def ms(moment: datetime) -> int:
    """A protocol timestamp: milliseconds since the epoch."""
    return (moment - store.EPOCH) // timedelta(milliseconds=1)


def batch(
    points: Iterable[tuple[float, Value]],
    *,
    channel: str = "temp",
    stream: str = "s1",
    origin: Origin = "live",
    device: str = DEVICE,
    first_seq: int = 1,
) -> Batch:
    """One sample per (seconds after T0, value) of one channel, seqs counting up."""
    rows = ((at, {channel: value}) for at, value in points)
    return samples(rows, stream=stream, origin=origin, device=device, first_seq=first_seq)


def samples(
    rows: Iterable[tuple[float, dict[str, Value]]],
    *,
    stream: str = "s1",
    origin: Origin = "live",
    device: str = DEVICE,
    first_seq: int = 1,
) -> Batch:
    """One sample per (seconds after T0, its values), seqs counting up."""
    found = tuple(
        Sample(first_seq + i, ms(T0 + timedelta(seconds=at)), values)
        for i, (at, values) in enumerate(rows)
    )
    return Batch(device, stream, origin, found)


async def add_device(database: Database, device_id: str = DEVICE) -> None:
    """A registered device (history answers 404 for any other)."""
    async with database.session() as session:
        session.add(Device(id=device_id, mqtt_password_hash="unused"))
