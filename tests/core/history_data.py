"""Telemetry to test history and export with: one device, samples seconds after T0."""

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
    samples = tuple(
        Sample(first_seq + i, ms(T0 + timedelta(seconds=at)), {channel: value})
        for i, (at, value) in enumerate(points)
    )
    return Batch(device, stream, origin, samples)


async def add_device(database: Database, device_id: str = DEVICE) -> None:
    """A registered device (history answers 404 for any other)."""
    async with database.session() as session:
        session.add(Device(id=device_id, mqtt_password_hash="unused"))
