"""Which devices exist and are enabled, cached briefly so ingest asks the database rarely."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from core.db.engine import Database
from core.db.models import Device

TTL_SECONDS = 5.0  # a disabled device is refused within this long; the database is spared


class Standing(StrEnum):
    """Whether messages from a device are accepted."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


@dataclass
class _Entry:
    standing: Standing
    fetched: float


class DeviceDirectory:
    """Answers "may this device publish?" from a short-lived cache over the devices table."""

    def __init__(self, database: Database, ttl: float = TTL_SECONDS) -> None:
        self._database = database
        self._ttl = ttl
        self._cache: dict[str, _Entry] = {}

    async def standing(self, device_id: str) -> Standing:
        """The device's standing, read from the database at most once per TTL."""
        now = time.monotonic()
        entry = self._cache.get(device_id)
        if entry is None or now - entry.fetched > self._ttl:
            async with self._database.session() as session:
                enabled = await session.scalar(select(Device.enabled).where(Device.id == device_id))
            standing = (
                Standing.UNKNOWN
                if enabled is None
                else Standing.ENABLED
                if enabled
                else Standing.DISABLED
            )
            entry = self._cache[device_id] = _Entry(standing, now)
        return entry.standing

    def forget(self, device_id: str) -> None:
        """Drop a cached answer (after a device is created, enabled, disabled or deleted)."""
        self._cache.pop(device_id, None)
