"""Fan-out: what one server replica committed, told to the others through PostgreSQL NOTIFY.

Replicas share the database and split ingest through ``$share``, but each keeps its live
state in memory (the hub, alarms, command waiters). So each replica tells the others, on
one NOTIFY channel of their database, what only it has seen:

- the batches of each ingest commit (hub, last seen, identity sightings of the others);
- the devices whose alarms it stored a change of (the others read them again);
- committed command moves (their API long polls wake), desired configurations (their
  thresholds) and device changes (their directory forgets, so a disabled device is refused
  at once everywhere).

The rules:

- Told only after the commit (fed by the same listeners as the hub, and by the database's
  bus, which hears committed changes only): a rolled-back write sends nothing.
- Each message names its replica; a replica ignores its own, so nothing it stored reaches
  its hub twice. A sample reaches each other hub once: ``$share`` gave it to one replica.
- NOTIFY refuses payloads of 8,000 bytes or more: batches are split by samples into
  payloads under PAYLOAD_BYTES (``fanout_wire``), all sent in one statement, so the others
  get all of a send or none of it. A lone sample over the limit is dropped (and logged).
- Replayed samples older than TOLD_REPLAY_MS are not told: no live page would draw them
  (the history reads them from the database), and a backlog replayed after an outage would
  otherwise cost every replica its decoding, on the loop the replay is bound by.
- At most, never more: a replica that is down or reconnecting misses what was said
  meanwhile: its hub fills again from the next samples, its command waiters re-read the
  database on their own, and once it listens again (``resumed``) its alarms and thresholds
  are read again from the database, the truth. When the
  sender falls behind by QUEUE_SAMPLES, newer commits are dropped from the fan-out
  (counted), never holding ingest up.
- SQLite has no LISTEN: a single server (the demo) runs without fan-out.

bench/fanout.py measured NOTIFY against an MQTT fan-out topic; the numbers are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from core.db.availability import database_unavailable
from core.db.engine import Database
from core.events import CommandChanged, DesiredConfigChanged, DeviceChanged
from core.protocol.telemetry import Batch
from core.tasks import Listeners, TaskSet
from webui.backbone.fanout_wire import decode_batches, encode, recent, room, telemetry_items

log = logging.getLogger(__name__)
CHANNEL = "pp_fanout"  # one channel for every replica on a database
# Samples waiting to be told at most: ten seconds of 10,000 samples a second. Past that the
# fan-out drops rather than grow, since the others' pages can read the history instead.
QUEUE_SAMPLES = 100_000
RECONNECT_S = 1.0  # a lost listening connection is made again this often
STOP_WAIT_S = 2.0  # how long stop waits to tell what is queued (one send takes milliseconds)


Send = Callable[[list[str]], Awaitable[None]]


class Fanout:
    """Tells the other replicas what this one committed; hands their news to listeners."""

    def __init__(self, database: Database, *, replica: str | None = None) -> None:
        self._database = database
        self.replica = replica or uuid.uuid4().hex[:12]
        self._room = room(self.replica, "t")
        self._queue: asyncio.Queue[tuple[str, list[bytes], int]] = asyncio.Queue()
        self._queued = 0  # samples in the queue
        self._tasks = TaskSet("fan-out")
        self._unsubscribe: list[Callable[[], None]] = []
        self._listening: asyncpg.Connection | None = None
        self.running = False
        self.sent = 0  # payloads sent
        self.received = 0  # payloads of other replicas taken
        self.dropped = 0  # samples not told (queue full)
        # What the other replicas committed:
        self.telemetry: Listeners[list[Batch]] = Listeners("fan-out telemetry")
        self.alarms: Listeners[str] = Listeners("fan-out alarms")  # a device's alarms changed
        self.commands: Listeners[CommandChanged] = Listeners("fan-out commands")
        self.configs: Listeners[DesiredConfigChanged] = Listeners("fan-out configs")
        self.devices: Listeners[DeviceChanged] = Listeners("fan-out devices")
        # Listening again after a lost connection: what was said meanwhile is missed, so
        # what is kept of it (alarms, thresholds) is read again. Told the number of times.
        self.resumed: Listeners[int] = Listeners("fan-out resumed")
        self.resumes = 0

    # -- telling ----------------------------------------------------------------------

    def on_commit(self, batches: list[Batch]) -> None:
        """Tell the batches of a local ingest commit (the ingest listener); never waits."""
        if not self.running:
            return
        batches = recent(batches, time.time_ns() // 1_000_000)
        samples = sum(len(batch.samples) for batch in batches)
        if not samples:
            return
        if self._queued + samples > QUEUE_SAMPLES:
            if not self.dropped:
                log.warning("fan-out behind by %d samples: dropping newer ones", self._queued)
            self.dropped += samples
            return
        self._queued += samples
        self._queue.put_nowait(("t", telemetry_items(batches, self._room), samples))

    def alarms_written(self, device_ids: list[str]) -> None:
        """Tell that the devices' active alarms changed (stored by this replica)."""
        self._tell("a", [orjson.dumps(device_id) for device_id in device_ids])

    def _tell(self, kind: str, items: list[bytes]) -> None:
        if self.running:
            self._queue.put_nowait((kind, items, 0))

    async def _command(self, event: CommandChanged) -> None:
        self._tell("c", [orjson.dumps([str(event.command_id), event.device_id, event.state])])

    async def _config(self, event: DesiredConfigChanged) -> None:
        self._tell("g", [orjson.dumps(event.device_id)])

    async def _device(self, event: DeviceChanged) -> None:
        self._tell("d", [orjson.dumps(event.device_id)])

    async def _send_forever(self, send: Send) -> None:
        while True:
            taken = [await self._queue.get()]
            while not self._queue.empty():  # whatever queued meanwhile goes in one statement
                taken.append(self._queue.get_nowait())
            self._queued -= sum(samples for _, _, samples in taken)
            kinds: dict[str, list[bytes]] = {}
            for kind, items, _ in taken:
                kinds.setdefault(kind, []).extend(items)
            payloads = [
                p for kind, items in kinds.items() for p in encode(self.replica, kind, items)
            ]
            try:
                await send(payloads)
                self.sent += len(payloads)
            except Exception as error:  # at most once: the others' pages miss these points
                log.warning("fan-out of %d payloads failed: %s", len(payloads), error)
            finally:
                for _ in taken:
                    self._queue.task_done()

    # -- hearing ----------------------------------------------------------------------

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message["r"] == self.replica:
                return  # our own: already in our hub
            self.received += 1
            self._dispatch(message["k"], message["i"])
        except Exception:
            log.exception("a fan-out message was not taken")

    def _dispatch(self, kind: str, items: list[Any]) -> None:
        if kind == "t":
            self.telemetry.emit(decode_batches(items))
        elif kind == "a":
            for device_id in items:
                self.alarms.emit(device_id)
        elif kind == "c":
            for command_id, device_id, state in items:
                self.commands.emit(CommandChanged(uuid.UUID(command_id), device_id, state))
        elif kind == "g":
            for device_id in items:
                self.configs.emit(DesiredConfigChanged(device_id))
        elif kind == "d":
            for device_id in items:
                self.devices.emit(DeviceChanged(device_id))

    # -- running ----------------------------------------------------------------------

    def _dsn(self) -> str:
        url = self._database.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def start(self) -> None:
        """Listen and start telling (PostgreSQL); on SQLite, nothing: a single server.

        A database away at start is waited for in the background, as a lost listening
        connection is: the rest of the server (ingest, presence, the deadlines) must start
        all the same, and recover when the database answers.
        """
        if self._database.dialect != "postgresql":
            return
        listening = True
        try:
            await self._listen()
        except Exception as error:
            if not database_unavailable(error):
                raise
            listening = False  # _listen_again says so, and tries again, from the first round
        bus = self._database.events
        self._unsubscribe = [
            bus.subscribe(CommandChanged, self._command),
            bus.subscribe(DesiredConfigChanged, self._config),
            bus.subscribe(DeviceChanged, self._device),
        ]
        self._tasks.spawn(self._send_forever(self._notify), name="fan-out sender")
        self.running = True
        if not listening:
            self._tasks.spawn(self._listen_again(), name="fan-out listen")

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._dsn())
        await connection.add_listener(CHANNEL, self._heard)
        connection.add_termination_listener(self._lost)
        self._listening = connection

    @property
    def listening_pid(self) -> int | None:
        """The database backend that listens for this replica (None when not listening)."""
        return None if self._listening is None else self._listening.get_server_pid()

    def _lost(self, _connection: Any) -> None:
        if self.running:
            log.warning("fan-out listening connection lost; listening again")
            self._tasks.spawn(self._listen_again(), name="fan-out listen")

    async def _listen_again(self) -> None:
        while self.running:
            try:
                await self._listen()
            except Exception as error:
                log.warning("fan-out not listening (%s); again in %s s", error, RECONNECT_S)
                await asyncio.sleep(RECONNECT_S)
                continue
            self.resumes += 1
            self.resumed.emit(self.resumes)
            return

    async def _notify(self, payloads: list[str]) -> None:
        async with self._database.raw_connection() as connection:
            await connection.execute(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", CHANNEL, payloads
            )

    async def stop(self) -> None:
        """Tell what is queued (briefly), then stop telling and listening."""
        if self.running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_WAIT_S):
                    await self._queue.join()
        self.running = False
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self._tasks.cancel()
        if self._listening is not None:
            with contextlib.suppress(Exception):
                await self._listening.close()
            self._listening = None
