"""Which devices exist and are enabled, cached so ingest asks the database rarely.

The whole devices table is read in one query every TTL_SECONDS, so a fleet of hundreds
costs one small query every few seconds, not one per device: the receive loop waits on
these lookups, and every millisecond there delays every message behind it. A device
missing from the last read (created since, or unknown) is asked for once, and the answer
kept for the same time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum

from core.db.engine import Database
from core.services import devices

TTL_SECONDS = 5.0  # a disabled device is refused within this long; the database is spared


class Standing(StrEnum):
    """Whether messages from a device are accepted."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


def _standing(enabled: bool | None) -> Standing:
    if enabled is None:
        return Standing.UNKNOWN
    return Standing.ENABLED if enabled else Standing.DISABLED


@dataclass
class _Entry:
    standing: Standing
    fetched: float


class DeviceDirectory:
    """Answers "may this device publish?" from a short-lived copy of the devices table."""

    def __init__(self, database: Database, ttl: float = TTL_SECONDS) -> None:
        self._database = database
        self._ttl = ttl
        self._known: dict[str, Standing] = {}  # the last read of the whole table
        self._read_at = -float("inf")
        self._misses: dict[str, _Entry] = {}  # devices asked for one by one since then
        self._reading = asyncio.Lock()
        self.queries = 0  # database round trips so far (tests count them)

    async def standing(self, device_id: str) -> Standing:
        """The device's standing, at most TTL seconds old."""
        if time.monotonic() - self._read_at > self._ttl:
            async with self._reading:  # one reader; the others use what it read
                if time.monotonic() - self._read_at > self._ttl:
                    await self._read_all()
        known = self._known.get(device_id)
        if known is not None:
            return known
        entry = self._misses.get(device_id)
        now = time.monotonic()
        if entry is None or now - entry.fetched > self._ttl:
            async with self._database.session() as session:
                enabled = await devices.enabled(session, device_id)
            self.queries += 1
            entry = self._misses[device_id] = _Entry(_standing(enabled), now)
        return entry.standing

    async def _read_all(self) -> None:
        async with self._database.session() as session:
            rows = await devices.all_enabled(session)
        self.queries += 1
        self._known = {device_id: _standing(enabled) for device_id, enabled in rows.items()}
        self._misses.clear()
        self._read_at = time.monotonic()

    def forget(self, device_id: str) -> None:
        """Drop a cached answer (after a device is created, enabled, disabled or deleted)."""
        self._known.pop(device_id, None)
        self._misses.pop(device_id, None)
