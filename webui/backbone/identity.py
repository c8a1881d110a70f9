"""Identity: which station instances speak for each device, and when two of them do at once.

A station names its instance by its outbox's stream, in every telemetry batch (live and
replayed alike) and in its births. A restart of the same outbox keeps its stream; an outbox
wiped and started afresh makes a new one, once: A is heard, then only B. Two processes
behind one identity instead take turns, each knocking the other off the broker: A, B, A.
So a conflict starts when a stream is heard again after another stream was heard since its
own previous message, all within WINDOW, and it lasts until at most one stream has been
heard for a whole WINDOW. Each episode writes one audit entry when it starts and one when it
ends; everything else stays in memory (no database on a message).

Every server replica hears every birth, and every batch (its own, and the others' through
the fan-out), so each finds the same episode, within moments of the others. The audit log
is shared: the first replica to find an episode's start writes it, and the first to find
its end writes that. Under the audit log's lock, a start is left out when the device's
newest conflict entry is of an episode that began after this one's start less a WINDOW
(another replica's start of this episode, or even its end; an episode that ended began a
WINDOW at least before the next, and a start left open by a server that stopped
mid-episode is older still), and an end is left out unless the newest is a start (another
replica wrote this end already). Each replica's pages keep
their own view, from memory, until their own sweep finds the end.

A sighting carries the time its message arrived, not the time it is reported here: replayed
batches are parsed in threads and may be reported after a later live one, and an earlier
arrival reported late must not look like a turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import audit
from core.tasks import Listeners, TaskSet

log = logging.getLogger(__name__)
# Twice the longest a station waits before taking its identity back once it sees a rival
# (core.mqtt.takeover.Takeover.cap, 60 s): rivals that yield still take turns within it, so
# an episode neither goes unseen nor ends and restarts between their returns. A conflict
# that has stopped leaves the pages two minutes later.
WINDOW = timedelta(seconds=120)
SWEEP_SECONDS = 1.0  # how often ended episodes are looked for: a page shows the end this late
SHOWN = 8  # hex digits of a stream id people see: enough to tell a device's instances apart
STOP_WAIT_S = 5.0  # how long stop waits for audit entries still to be written
ACTION = "device.identity_conflict"
ENDED = "device.identity_conflict.ended"


def short(stream: str) -> str:
    """A stream id as people see it: its first SHOWN characters."""
    return stream[:SHOWN]


@dataclass(frozen=True)
class Sighting:
    """A message from one station instance: the device, its stream, when it arrived."""

    device_id: str
    stream: str
    at: datetime

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            msg = f"a sighting needs an aware time: {self.at!r}"
            raise ValueError(msg)


@dataclass(frozen=True)
class Conflict:
    """Two or more instances speaking for one device: since when, and their streams."""

    device_id: str
    since: datetime
    streams: tuple[str, ...]  # in full, sorted; every stream that took turns in the episode
    ended_at: datetime | None = None  # set on the event that says the episode is over

    @property
    def stations(self) -> int:
        """How many station instances took turns."""
        return len(self.streams)


@dataclass
class _Device:
    heard: dict[str, datetime] = field(default_factory=dict)  # stream → its latest arrival
    conflict: Conflict | None = None


@dataclass(frozen=True)
class _Entry:
    action: str
    conflict: Conflict
    detail: dict[str, Any]


class Identity:
    """Follows each device's streams; tells listeners when a conflict starts, changes, ends."""

    def __init__(
        self,
        database: Database,
        *,
        window: timedelta = WINDOW,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        self.window = window
        self.clock = clock  # what time it is for sweeps (tests set their own)
        self._devices: dict[str, _Device] = {}
        self.changes: Listeners[Conflict] = Listeners("identity")
        self._entries: asyncio.Queue[_Entry] = asyncio.Queue()  # written in order, one by one
        self._tasks = TaskSet("identity")

    # -- reading -----------------------------------------------------------------------

    def conflict(self, device_id: str) -> Conflict | None:
        """The device's conflict while it lasts, else None."""
        device = self._devices.get(device_id)
        return None if device is None else device.conflict

    def conflicts(self) -> list[Conflict]:
        """Every conflict that lasts, by device id."""
        found = [d.conflict for d in self._devices.values() if d.conflict is not None]
        return sorted(found, key=lambda c: c.device_id)

    # -- sightings ---------------------------------------------------------------------

    def seen(self, sighting: Sighting) -> None:
        """A batch or birth of ``sighting.stream`` arrived (a message without one says nothing)."""
        if not sighting.stream:
            return
        device = self._devices.setdefault(sighting.device_id, _Device())
        previous = device.heard.get(sighting.stream)
        turns = self._took_turns(device, sighting, previous)
        if previous is None or sighting.at > previous:
            device.heard[sighting.stream] = sighting.at
        if not turns:
            return
        current = device.conflict
        streams = tuple(sorted({sighting.stream, *turns, *(current.streams if current else ())}))
        if current is None:
            device.conflict = Conflict(sighting.device_id, sighting.at, streams)
            log.warning(
                "identity conflict: %s is used by %d station instances (%s)",
                sighting.device_id,
                len(streams),
                ", ".join(short(s) for s in streams),
            )
            self._audit(ACTION, device.conflict, {})
            self.changes.emit(device.conflict)
        elif streams != current.streams:
            device.conflict = replace(current, streams=streams)
            self.changes.emit(device.conflict)

    def _took_turns(
        self, device: _Device, sighting: Sighting, previous: datetime | None
    ) -> list[str]:
        """The other streams heard between this stream's previous message and this one."""
        if previous is None or sighting.at - previous > self.window:
            return []
        return [
            stream
            for stream, at in device.heard.items()
            if stream != sighting.stream and previous < at <= sighting.at
        ]

    # -- the end of episodes -----------------------------------------------------------

    def sweep(self) -> None:
        """End the episodes of devices that only one stream spoke for over the window."""
        now = self.clock()
        for device_id, device in list(self._devices.items()):
            # A stream not heard for a window cannot take a turn any more: forget it.
            device.heard = {s: at for s, at in device.heard.items() if now - at <= self.window}
            current = device.conflict
            if current is not None and len(device.heard) <= 1:
                device.conflict = None
                ended = replace(current, ended_at=now)
                lasted = round((now - current.since).total_seconds())
                log.warning("identity conflict of %s is over after %d s", device_id, lasted)
                self._audit(ENDED, ended, {"lasted_s": lasted})
                self.changes.emit(ended)
            if not device.heard and device.conflict is None:
                del self._devices[device_id]

    # -- the audit log -----------------------------------------------------------------

    def _audit(self, action: str, conflict: Conflict, detail: dict[str, Any]) -> None:
        self._entries.put_nowait(_Entry(action, conflict, detail))

    async def _written_elsewhere(self, session: AsyncSession, entry: _Entry) -> bool:
        """Whether another replica has written this entry of the episode (under audit.lock)."""
        device_id = entry.conflict.device_id
        newest = await audit.newest_of(
            session, actions=(ACTION, ENDED), actor=f"device:{device_id}", target_id=device_id
        )
        if entry.action == ENDED:
            return newest is None or newest.action == ENDED
        if newest is None:
            return False
        began = (newest.after or {}).get("since")  # as the other replica wrote it
        same_episode = entry.conflict.since - self.window
        return isinstance(began, str) and datetime.fromisoformat(began) > same_episode

    async def _write(self, entry: _Entry) -> None:
        conflict = entry.conflict
        async with self._database.session() as session:
            await audit.lock(session)  # what the look below finds stays true until written
            if await self._written_elsewhere(session, entry):
                return
            await audit.record(
                session,
                actor=f"device:{conflict.device_id}",
                action=entry.action,
                target_type="device",
                target_id=conflict.device_id,
                after={
                    "streams": [short(s) for s in conflict.streams],
                    "since": conflict.since.isoformat(),
                    "window_s": int(self.window.total_seconds()),
                    **entry.detail,
                },
            )

    async def _write_forever(self) -> None:
        while True:
            entry = await self._entries.get()
            try:
                await self._write(entry)
            except Exception:  # the warning in the log stays; a later episode is audited
                log.exception("audit of %s's identity conflict failed", entry.conflict.device_id)
            finally:
                self._entries.task_done()

    async def written(self) -> None:
        """Wait until every audit entry so far is written (or has failed)."""
        await self._entries.join()

    # -- running -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start writing audit entries and looking for ended episodes."""
        self._tasks.spawn(self._write_forever(), name="identity audit")
        self._tasks.spawn(self._sweep_forever(), name="identity sweep")

    async def stop(self) -> None:
        """Write what is queued (for a few seconds at most), then stop."""
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_WAIT_S):
                await self.written()
        await self._tasks.cancel()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self.sweep()
            except Exception:
                log.exception("identity sweep failed")
