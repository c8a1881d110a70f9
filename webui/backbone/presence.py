"""Presence: each device online, offline (clean or lost) or stale, and its offline periods.

Retained status messages (birth, last will, clean stop) say online/offline; heartbeats
say the device is still there and carry what the station knows. A device that misses
three heartbeats is stale. Every period a device is not online is an offline event with a
start, an end once it is back, and a reason (clean, lost or stale; a stale period that
ends in a last will becomes lost, since the device was gone from its start). Each change
is audited with its offline event, in its transaction (core.services.offline_events).

Statuses name the station instance (its outbox's stream) that says them. While a device is
online through one instance, a farewell or will from another instance says only that the
other one left (two stations sharing one identity, one of them stopping): the device stays
online, and no offline period is recorded for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from core.db.availability import log_failure
from core.db.engine import Database
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop
from core.protocol.messages import Heartbeat, Status
from core.services import offline_events
from core.tasks import Listeners, TaskSet
from webui.backbone.directory import DeviceDirectory, Standing
from webui.backbone.identity import Sighting

log = logging.getLogger(__name__)
STALE_AFTER_MISSED = 3  # heartbeats; one lost QoS 0 heartbeat must not flap the badge
SWEEP_SECONDS = 1.0  # how often stale devices are looked for
# Until a device's first heartbeat says its period (after a server restart, say).
ASSUMED_INTERVAL_S = 15


@dataclass(frozen=True)
class DeviceState:
    """What the server knows of a device's presence right now."""

    device_id: str
    status: str  # online | offline | stale
    reason: str | None  # clean | lost | stale when not online
    since: datetime
    interval_s: int | None = None
    uptime_s: int | None = None
    outbox: int | None = None
    config_version: int | None = None
    heard: float = 0.0  # monotonic time of the last status or heartbeat
    stream: str = ""  # the station instance whose birth made it online, when it said so


class Presence:
    """Follows status and heartbeat topics; records offline events in the database."""

    def __init__(self, database: Database, directory: DeviceDirectory) -> None:
        self._database = database
        self._directory = directory
        self._states: dict[str, DeviceState] = {}
        # Every new state, as it is set (pages follow presence on their ticker instead).
        self.changes: Listeners[DeviceState] = Listeners("presence")
        self._sweeper = TaskSet("presence sweep")
        self._lock = asyncio.Lock()  # one transition at a time keeps events consistent
        # Births that name their station instance. Not wills or farewells: they say an
        # instance left, and a late will of a replaced outbox must not look like its turn.
        self.sightings: Listeners[Sighting] = Listeners("presence sightings")
        # Grows on every change of a device's status or reason (not on a heartbeat's figures):
        # a page that lists transitions reads them again when it moved.
        self.transitions = 0

    # -- reading -----------------------------------------------------------------------

    def state(self, device_id: str) -> DeviceState | None:
        """The presence of one device, or None if nothing was heard of it."""
        return self._states.get(device_id)

    def states(self) -> list[DeviceState]:
        """The presence of every device heard of, by id."""
        return [self._states[key] for key in sorted(self._states)]

    def online(self) -> int:
        """How many devices are online."""
        return sum(1 for state in self._states.values() if state.status == "online")

    # -- routes --------------------------------------------------------------------------

    def routes(self) -> list[Route[Status] | Route[Heartbeat]]:
        """Status (QoS 1, retained) and heartbeat (QoS 0) of every device."""
        return [
            Route(topics.ALL_STATUS, 1, _decode_status, self.on_status),
            Route(topics.ALL_HEARTBEAT, 0, _decode_heartbeat, self.on_heartbeat),
        ]

    async def on_status(self, status: Status) -> None:
        """A birth, last will or clean stop."""
        if await self._directory.standing(status.device_id) is Standing.UNKNOWN:
            return
        if status.state == "online" and status.stream:
            self.sightings.emit(Sighting(status.device_id, status.stream, datetime.now(UTC)))
        if status.state == "online":
            await self._online(status.device_id, status.stream)
        elif self._left_only_itself(status):
            log.info(
                "%s: instance %s went %s while %s holds the identity; still online",
                status.device_id,
                status.stream[:8],
                status.reason,
                self._states[status.device_id].stream[:8],
            )
        else:
            assert status.reason is not None
            await self._offline(status.device_id, status.reason)

    def _left_only_itself(self, status: Status) -> bool:
        """Whether an offline status comes from an instance other than the one online."""
        current = self._states.get(status.device_id)
        return (
            current is not None
            and current.status == "online"
            and bool(current.stream and status.stream)
            and current.stream != status.stream
        )

    async def on_heartbeat(self, beat: Heartbeat) -> None:
        """A sign of life: back online if stale, and the station's figures."""
        if await self._directory.standing(beat.device_id) is Standing.UNKNOWN:
            return
        state = self._states.get(beat.device_id)
        if state is None or state.status != "online":
            state = await self._online(beat.device_id)
        self._set(
            replace(
                state,
                interval_s=beat.interval_s,
                uptime_s=beat.uptime_s,
                outbox=beat.outbox,
                config_version=beat.config_version,
                heard=time.monotonic(),
            )
        )

    # -- transitions ---------------------------------------------------------------------

    async def _online(self, device_id: str, stream: str = "") -> DeviceState:
        async with self._lock:
            now = datetime.now(UTC)
            previous = self._states.get(device_id)
            async with self._database.session() as session:
                await offline_events.end(
                    session, device_id=device_id, at=now, first_news=previous is None
                )
            state = DeviceState(device_id, "online", None, now, heard=time.monotonic())
            if previous is not None:
                since = previous.since if previous.status == "online" else now
                state = replace(previous, status="online", reason=None, since=since)
                state = replace(state, heard=time.monotonic())
            if stream:  # a birth names its instance; a heartbeat keeps the one known
                state = replace(state, stream=stream)
            self._set(state)
            return state

    async def _offline(
        self, device_id: str, reason: str, status: str = "offline", heard: float | None = None
    ) -> None:
        async with self._lock:
            current = self._states.get(device_id)
            if heard is not None and (current is None or current.heard != heard):
                return  # heard from again while the sweep waited for the lock
            now = datetime.now(UTC)
            async with self._database.session() as session:
                # After a server restart the retained will is all we get: the device was
                # last seen when we last heard it, not when we subscribed.
                await offline_events.begin(
                    session,
                    device_id=device_id,
                    reason=reason,
                    at=now,
                    first_news=device_id not in self._states,
                )
            previous = self._states.get(device_id)
            since = previous.since if previous and previous.status != "online" else now
            base = previous or DeviceState(device_id, "offline", reason, now)
            self._set(replace(base, status=status, reason=reason, since=since))

    def _set(self, state: DeviceState) -> None:
        previous = self._states.get(state.device_id)
        if previous is None or (previous.status, previous.reason) != (state.status, state.reason):
            self.transitions += 1
        self._states[state.device_id] = state
        self.changes.emit(state)

    # -- staleness -----------------------------------------------------------------------

    async def sweep(self) -> None:
        """Mark online devices that missed three heartbeats as stale."""
        now = time.monotonic()
        for state in list(self._states.values()):
            interval = state.interval_s or ASSUMED_INTERVAL_S
            if state.status == "online" and now - state.heard > STALE_AFTER_MISSED * interval:
                await self._offline(state.device_id, "stale", status="stale", heard=state.heard)

    async def start(self) -> None:
        """Start looking for stale devices."""
        self._sweeper.spawn(self._sweep_forever())

    async def stop(self) -> None:
        """Stop looking."""
        await self._sweeper.cancel()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:
                log_failure(log, "presence sweep failed")


def _decode_status(topic: topics.ParsedTopic, payload: bytes) -> Status | Drop:
    assert topic.device_id is not None
    return Status.parse(payload, topic.device_id)


def _decode_heartbeat(topic: topics.ParsedTopic, payload: bytes) -> Heartbeat | Drop:
    assert topic.device_id is not None
    return Heartbeat.parse(payload, topic.device_id)
