"""The sync bench's stations: many in one process, each the station's real sync part.

A station here is what a desktop station runs for sync and nothing else: its own link
(``desktop.agent.link``: a supervisor under its device account, birth and will), its own
replica file, and ``StationSync`` applying the server's signed pages to it, pulling on
connect, on a gap and on ``more``. The sampler, heartbeat, commands and configuration are
left out: they would add telemetry to the server's CPU that this bench does not measure.

Each station's ``sync/down`` route is wrapped to tell when a page carrying the watched
change has been *applied* (the handler returned: the replica's transaction committed, so
every reader of the file sees it), and to take the bench's bare baseline messages, which
never reach the sync part. Times are ``time.monotonic()``: CLOCK_MONOTONIC, one clock for
every process of the machine.

The process obeys commands from its queue, one at a time, answering each on its results
queue (see ``obey``), until its ``stop`` event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.mqtt.endpoint import Endpoint
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.signing import VerifyingKey
from core.protocol.sync import ChangePage
from core.tasks import TaskSet
from desktop.agent.config import AgentConfig
from desktop.agent.link import Link
from desktop.agent.outbox import Outbox
from desktop.agent.replica import Replica, replica_path
from desktop.agent.state import AgentState, EventLog
from desktop.agent.station import Station
from desktop.agent.sync import StationSync

Queue = Any  # multiprocessing's queues and events are not subscriptable types at runtime
Event = Any
RAW_PREFIX = b'{"type":"bench.raw"'  # the baseline's bare messages start so; no page does
START_SPREAD_S = 2.0  # stations connect over this long, as desktop.agent.fleet spreads them
CONNECT_S = 60.0  # three hundred connects on a loaded 2-core machine
POLL_S = 0.1  # how often cursors are read while waiting for the catch-up


class Watch:
    """What the stations wait to see (one field at one value), and when each saw it."""

    def __init__(self, stations: int) -> None:
        self.stations = stations  # how many note: once all have, ``done`` is set
        self.done = asyncio.Event()
        self.entity, self.key, self.field_name, self.value = "", "", "", None
        self.seen: dict[str, float] = {}  # device -> monotonic time it applied the change
        self.page_bytes = 0  # the size of a message that carried it
        self.raw: dict[str, float] = {}  # baseline: device -> monotonic time received
        self.armed_raw = False

    def arm(self, entity: str, key: str, field_name: str, value: Any) -> None:
        """Watch for this field at this value from now on."""
        self.entity, self.key, self.field_name, self.value = entity, key, field_name, value
        self.seen = {}
        self.done.clear()

    def arm_raw(self) -> None:
        """Time the baseline's bare messages from now on."""
        self.raw, self.armed_raw = {}, True
        self.done.clear()

    def note(self, device_id: str, *, raw: bool = False) -> None:
        """A station saw the change (or a bare message) now."""
        times = self.raw if raw else self.seen
        times.setdefault(device_id, time.monotonic())
        if len(times) >= self.stations:
            self.done.set()

    def carries(self, message: object) -> bool:
        """Whether ``message`` is a page setting the watched field to the watched value."""
        return isinstance(message, ChangePage) and any(
            c.entity == self.entity
            and c.key == self.key
            and c.field == self.field_name
            and c.value == self.value
            for c in message.changes
        )


class _Raw:
    """A baseline message: timed on arrival, never handed to the sync part."""


_RAW = _Raw()


class SyncStation:
    """One station's link, replica and sync part, its ``sync/down`` route timed."""

    def __init__(
        self,
        device_id: str,
        password: str,
        endpoint: Endpoint,
        data_dir: Path,
        keys: tuple[VerifyingKey, ...],
        template: Path,
        watch: Watch,
    ) -> None:
        self.device_id = device_id
        self._watch = watch
        endpoint = replace(endpoint, username=device_id, password=password)
        config = AgentConfig(device_id, endpoint, data_dir, server_keys=keys)
        path = replica_path(data_dir, device_id)
        shutil.copyfile(template, path)  # migrated once, copied: a fresh station's replica
        self.replica = Replica(path, device_id=device_id)
        self.outbox = Outbox(config.outbox_path)  # a Station holds one; nothing is sampled
        state = AgentState(device_id, stream=self.outbox.stream)
        events = EventLog(state)
        link = Link(config, stream=self.outbox.stream, state=state, events=events)
        self.supervisor = link.supervisor
        station = Station(config, state, self.outbox, asyncio.Lock(), self.supervisor, events)
        self.sync = StationSync(station, self.replica)
        down = topics.sync_down(device_id)
        for route in self.sync.routes():
            self.supervisor.router.add(self._timed(route) if route.topic_filter == down else route)
        self.supervisor.add_listener(link.on_link)
        self.supervisor.add_listener(self.sync.on_link)
        self._loops = TaskSet(f"bench station {device_id}")

    def _timed(self, route: Route[Any]) -> Route[Any]:
        """The sync part's ``sync/down`` route, noting when the watched change is applied."""
        watch = self._watch

        def decode(topic: topics.ParsedTopic, payload: bytes) -> Any:
            if payload.startswith(RAW_PREFIX):
                return _RAW
            message = route.decode(topic, payload)
            if watch.carries(message):
                watch.page_bytes = len(payload)
            return message

        async def handle(message: Any) -> None:
            if message is _RAW:
                if watch.armed_raw:
                    watch.note(self.device_id, raw=True)
                return
            await route.handle(message)  # the page applied (or raised: not seen)
            if watch.carries(message):
                watch.note(self.device_id)

        return Route(route.topic_filter, route.qos, decode, handle)

    async def start(self) -> None:
        """Connect; the sync part pulls from the replica's cursor once connected."""
        for loop in self.sync.loops():
            self._loops.spawn(loop(), name=f"{loop.__name__} of {self.device_id}")
        await self.supervisor.start()

    async def stop(self) -> None:
        """Disconnect (with the farewell), stop the sync part, close the files."""
        await self._loops.cancel()
        await self.supervisor.stop()
        await self.sync.stop()
        self.replica.close()
        self.outbox.close()

    def shows(self, user_id: uuid.UUID, display_name: str) -> bool:
        """Whether the replica's effective view gives this person this display name."""
        person = self.replica.person(user_id)
        return person is not None and person.display_name == display_name


def process(
    port: int,
    credentials: dict[str, str],
    key_pem: bytes,
    template: str,
    commands: Queue,
    results: Queue,
    ready: Queue,
    stop: Event,
) -> None:
    """The stations' process: builds them, says ready, obeys commands until ``stop``."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_run(port, credentials, key_pem, Path(template), commands, results, ready, stop))


async def _run(
    port: int,
    credentials: dict[str, str],
    key_pem: bytes,
    template: Path,
    commands: Queue,
    results: Queue,
    ready: Queue,
    stop: Event,
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pp-sync-stations-"))
    keys = (VerifyingKey.from_pem(key_pem),)
    watch = Watch(len(credentials))
    endpoint = Endpoint("127.0.0.1", port)
    fleet: list[SyncStation] = []
    try:
        for device_id, password in sorted(credentials.items()):
            fleet.append(
                SyncStation(device_id, password, endpoint, data_dir, keys, template, watch)
            )
        ready.put("ready")
        while not stop.is_set():
            try:
                command = await asyncio.to_thread(commands.get, True, 0.5)
            except queue.Empty:
                continue
            await obey(command, fleet, watch, results)
    finally:
        with contextlib.suppress(Exception):  # a clean farewell is a courtesy here
            await asyncio.gather(*(station.stop() for station in fleet))
        shutil.rmtree(data_dir, ignore_errors=True)


async def obey(
    command: tuple[Any, ...], fleet: list[SyncStation], watch: Watch, results: Queue
) -> None:
    """Carry out one command from the bench and answer it on ``results``.

    - ``("connect",)``: start every station (spread), answer ``("connected", n)``.
    - ``("catch_up", head, within_s)``: answer ``("caught_up", n)``, n at or past ``head``.
    - ``("watch", user_id, display_name, within_s)``: answer ``("armed",)`` at once, then
      ``("seen", {device: time}, page_bytes, shown)`` once all saw it or ``within_s`` passed;
      ``shown``: replicas whose effective view shows the new name (read after the wait).
    - ``("raw", within_s)``: answer ``("armed",)``, then ``("raw", {device: time})``.
    """
    kind = command[0]
    if kind == "connect":
        for station in fleet:
            await station.start()
            await asyncio.sleep(START_SPREAD_S / len(fleet))
        deadline = time.monotonic() + CONNECT_S
        while time.monotonic() < deadline:
            if all(s.supervisor.connected for s in fleet):
                break
            await asyncio.sleep(POLL_S)
        results.put(("connected", sum(s.supervisor.connected for s in fleet)))
    elif kind == "catch_up":
        head, within_s = command[1], command[2]
        cursors = await _poll_cursors(fleet, head, within_s)
        results.put(("caught_up", sum(cursor >= head for cursor in cursors)))
    elif kind == "watch":
        user_id, name, within_s = uuid.UUID(command[1]), command[2], command[3]
        watch.arm("user", str(user_id), "display_name", name)
        results.put(("armed",))
        await _wait(watch.done, within_s)
        seen = dict(watch.seen)
        shown = await asyncio.to_thread(lambda: sum(s.shows(user_id, name) for s in fleet))
        results.put(("seen", seen, watch.page_bytes, shown))
    elif kind == "raw":
        watch.arm_raw()
        results.put(("armed",))
        await _wait(watch.done, command[1])
        watch.armed_raw = False
        results.put(("raw", dict(watch.raw)))
    else:
        results.put(("unknown", kind))


async def _poll_cursors(fleet: list[SyncStation], head: int, within_s: float) -> list[int]:
    """Every replica's cursor, once all reach ``head`` or ``within_s`` has passed."""
    deadline = time.monotonic() + within_s
    while True:
        cursors = await asyncio.to_thread(lambda: [s.replica.cursor for s in fleet])
        if min(cursors) >= head or time.monotonic() > deadline:
            return cursors
        await asyncio.sleep(POLL_S)


async def _wait(event: asyncio.Event, within_s: float) -> None:
    """Until ``event`` is set or ``within_s`` has passed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within_s):
            await event.wait()
