"""Last seen: when each device was last heard, by a message of any kind, in memory first.

Every message a device sends (telemetry live or replayed, heartbeat, status, configuration
report) moves its time here as it arrives, from the router. Two kinds do not: the retained
copies the broker replays on each connect (old news, however fresh they arrive), and a
last will (the broker's word, sent when it gave up on the device). The API, the fleet page
and the device page all read the time through ``at``, so they agree. The database's
``last_seen_at`` follows in batches: every FLUSH_SECONDS one UPDATE per device that moved,
never one per message, and once more on stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from core.db.availability import log_failure
from core.db.engine import Database
from core.mqtt.routing import Delivery
from core.protocol.messages import Status
from core.services import devices
from core.tasks import TaskSet

log = logging.getLogger(__name__)
# How far the stored column may lag memory (and what a crash can lose of it): at 1,000
# stations heard every second, one transaction of 1,000 small UPDATEs every five seconds.
FLUSH_SECONDS = 5.0


class LastSeen:
    """The time each device was last heard; stored in batches."""

    def __init__(
        self, database: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._database = database
        self._clock = clock
        self._seen: dict[str, datetime] = {}
        self._unstored: dict[str, datetime] = {}  # moved since the last flush
        self._tasks = TaskSet("last seen")
        self._flushing = asyncio.Lock()  # the timer's flush and stop's never interleave

    def on_delivery(self, delivery: Delivery) -> None:
        """A message arrived (the router's listener): its device was heard, if it spoke."""
        device_id = delivery.topic.device_id
        if device_id is None or delivery.retained:
            return
        envelope = delivery.envelope
        if isinstance(envelope, Status) and envelope.reason == "lost":
            return
        self.heard(device_id)

    def heard(self, device_id: str, at: datetime | None = None) -> None:
        """A message of ``device_id`` arrived (now, unless ``at`` says when)."""
        at = at or self._clock()
        known = self._seen.get(device_id)
        if known is None or at > known:
            self._seen[device_id] = self._unstored[device_id] = at

    def at(self, device_id: str, stored: datetime | None = None) -> datetime | None:
        """When the device was last heard: the later of memory and the ``stored`` column.

        The column counts too: after a restart memory is empty, and another replica may
        have heard the device since.
        """
        heard = self._seen.get(device_id)
        if heard is None or stored is None:
            return heard or stored
        return max(heard, stored)

    async def flush(self) -> None:
        """Store the times that moved since the last flush, in one transaction."""
        async with self._flushing:
            if not self._unstored:
                return
            batch, self._unstored = self._unstored, {}
            try:
                async with self._database.session() as session:
                    known = await devices.record_last_seen(session, seen=batch)
            except Exception:
                for device_id, at in batch.items():  # try again next time, unless overtaken
                    self._unstored.setdefault(device_id, at)
                raise
            for device_id in batch.keys() - known:  # no such device: nothing to remember
                if self._seen.get(device_id) == batch[device_id]:
                    del self._seen[device_id]

    async def start(self) -> None:
        """Start storing every FLUSH_SECONDS."""
        self._tasks.spawn(self._flush_forever(), name="last seen flush")

    async def stop(self) -> None:
        """Stop the timer, then store what is left."""
        await self._tasks.cancel()
        try:
            await self.flush()
        except Exception:
            log_failure(log, "last seen times not stored at stop")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            try:
                await self.flush()
            except Exception:
                log_failure(
                    log, "storing last seen times failed; tried again in %s s", FLUSH_SECONDS
                )
