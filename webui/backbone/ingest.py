"""Telemetry ingest: validated batches from the link, stored in batched transactions, acked.

The receive loop only checks the device and enqueues, live and replayed messages in lanes
of their own (bounded: when the database falls behind, the loop waits instead of memory
growing; stations pace their replay by the ack watermark, so in normal running it never
does). Workers take whatever has queued up in one lane — more under load, so commits grow
with the rate — store it exactly once, and publish each touched stream's watermark.

Live before replay, at every step (issue 15: live p99 during a replay within 2x idle):

- A free worker always takes live messages first, and a transaction holds one lane only:
  a live sample never waits for replay rows.
- At most REPLAY_WRITERS transactions hold replayed messages at once, so a backlog never
  takes every worker nor every core: the other workers are free for live the moment a
  live message arrives, and the database has a core for it.
- Replay transactions take at most REPLAY_SHARE of the time: a replay transaction's rows,
  rollups, COPY and hub update run on this process's one loop, the one that reads live
  messages and drives their commits, in chunks of ~10-25 ms per thousand samples; a live
  commit caught among them waits for each of its round trips. In the pauses between
  them, a live sample meets an idle loop and an idle database.
- Replayed messages (up to a thousand samples each) are parsed off the receive loop, one
  at a time in one thread: the receive loop never waits for a parse, and the parser never
  holds the interpreter more than one thread's share.

Stations keep their replay within a window of the ack watermark (``replay_ahead``), so the
replay queued here stays a few transactions deep whatever the backlog, and the broker sends
a live message ahead of replayed ones waiting for the server (broker/config.py).

A failed transaction is not retried here: nothing of it was acked, so the station replays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.db.engine import Database
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop, DropReason
from core.protocol.messages import Ack
from core.protocol.telemetry import DEFAULT_LIMITS, Batch, Limits, parse_batch
from core.services.telemetry import store
from core.tasks import Listeners, TaskSet
from webui.backbone.directory import DeviceDirectory, Standing
from webui.backbone.identity import Sighting
from webui.backbone.metrics import Metrics

log = logging.getLogger(__name__)
FAILURE_PAUSE = 1.0  # seconds a worker waits after a failed transaction, not to spin on it
# Transactions holding replayed messages at once. The replay is bound by this process's
# loop, not by transactions at once: bench.replay (1M points, 2 cores) ran 49-59k points/s
# with three workers taking replay (and live p99 193-216 ms against 27 ms idle), 52-59k
# with one (84-151 ms).
REPLAY_WRITERS = 1
# The share of wall time replay transactions may take: after one that took t seconds, the
# next waits t * (1 / REPLAY_SHARE - 1). bench.replay, 1M points: unpaced 52k points/s and
# live p99 151 ms (17 ms idle); at 0.5, 39k and 58 ms (19 ms idle); at 0.33 (300k points)
# 20-26k points/s and no better p99.
REPLAY_SHARE = 0.5

Publish = Callable[[str, bytes], Awaitable[None]]
DropSink = Callable[[DropReason, str, str], None]


@dataclass(frozen=True)
class IngestOptions:
    """How ingest batches its work (from settings)."""

    limits: Limits = DEFAULT_LIMITS
    linger_ms: float = 0.0
    max_rows: int = 5_000
    queue_messages: int = 2_000  # in each lane, live and replay (and replay unparsed)
    workers: int = 3  # concurrent transactions (PostgreSQL; SQLite has one writer)
    replay_writers: int = REPLAY_WRITERS  # of the workers, at most this many take replay
    replay_share: float = REPLAY_SHARE  # of wall time, at most, in replay transactions
    shared: bool = True  # subscribe through $share so replicas split the load

    def __post_init__(self) -> None:
        if not 1 <= self.replay_writers < max(2, self.workers):
            msg = f"replay writers must leave a worker for live: {self}"
            raise ValueError(msg)
        if not 0 < self.replay_share <= 1:
            msg = f"the replay's share of time must be in (0, 1]: {self.replay_share}"
            raise ValueError(msg)


@dataclass(frozen=True)
class _Received:
    batch: Batch
    rows: int
    at: float  # monotonic arrival time, for the lag histogram


_Lane = asyncio.Queue[_Received]  # live or replayed messages waiting for a worker


@dataclass(frozen=True)
class _Unparsed:
    """A replayed message as received: parsed later, off the receive loop."""

    device_id: str
    payload: bytes
    at: datetime  # when it arrived: its sighting keeps its place among live messages


class Ingest:
    """Subscribes to live and replayed telemetry and stores it exactly once."""

    def __init__(
        self,
        database: Database,
        directory: DeviceDirectory,
        metrics: Metrics,
        *,
        publish_ack: Publish,
        drop: DropSink,
        options: IngestOptions,
    ) -> None:
        self._database = database
        self._directory = directory
        self._metrics = metrics
        self._publish_ack = publish_ack
        self._drop = drop
        self.options = options
        self._live: _Lane = asyncio.Queue(options.queue_messages)
        self._replay: _Lane = asyncio.Queue(options.queue_messages)
        self._unparsed: asyncio.Queue[_Unparsed] = asyncio.Queue(options.queue_messages)
        self._parsing = 0  # replayed messages taken by the parser and not yet in their lane
        # Set on every enqueue and when a replay transaction ends; idle workers wait on it.
        self._arrived = asyncio.Event()
        self._workers = TaskSet("ingest worker")
        self._busy = 0
        self._replaying = 0  # transactions holding replayed messages now
        # The pause after a replay transaction lasts while its timer is pending: never a clock
        # compared with a time, which a loop whose timers fire early (uvloop's clock counts
        # whole milliseconds) would find not yet passed, with no timer left to wake the workers.
        self._resume: asyncio.TimerHandle | None = None
        self._replay_resumes_at = 0.0  # the loop's time the latest pause ends at
        self._acking = TaskSet("ingest ack")
        # The batches of each commit, once it has committed (the live hub listens).
        self.commits: Listeners[list[Batch]] = Listeners("ingest commits")
        self._parser = TaskSet("ingest parser")
        # Each accepted batch's station instance, on arrival (before any database work).
        self.sightings: Listeners[Sighting] = Listeners("ingest sightings")

    def routes(self) -> list[Route[Any]]:
        """The live and replay subscriptions (QoS 0 and 1, as the protocol sends them)."""
        share = topics.shared if self.options.shared else str
        return [
            Route(share(topics.ALL_TELEMETRY), 0, self._decode, self._accept),
            Route(share(topics.ALL_TELEMETRY_REPLAY), 1, self._later, self._unparsed.put),
        ]

    def _decode(self, topic: topics.ParsedTopic, payload: bytes) -> Batch | Drop:
        assert topic.device_id is not None  # the routes match device topics only
        return parse_batch(payload, topic.device_id, limits=self.options.limits)

    def _later(self, topic: topics.ParsedTopic, payload: bytes) -> _Unparsed:
        assert topic.device_id is not None
        return _Unparsed(topic.device_id, payload, datetime.now(UTC))

    async def _parse_forever(self) -> None:
        """Parse replayed messages in arrival order, in a thread, and queue them to store."""
        while True:
            message = await self._unparsed.get()
            self._parsing += 1
            try:
                parsed = await asyncio.to_thread(
                    parse_batch, message.payload, message.device_id, limits=self.options.limits
                )
                if isinstance(parsed, Drop):
                    topic = topics.telemetry_replay(message.device_id)
                    self._drop(parsed.reason, parsed.detail, topic)
                else:
                    await self._accept(parsed, message.at)
            except Exception:  # unacked, so the station replays it; the parser goes on
                log.exception("a replayed message of %s was not queued", message.device_id)
            finally:
                self._parsing -= 1
                self._unparsed.task_done()

    async def _accept(self, batch: Batch, at: datetime | None = None) -> None:
        standing = await self._directory.standing(batch.device_id)
        if standing is not Standing.ENABLED:
            reason = (
                DropReason.UNKNOWN_DEVICE
                if standing is Standing.UNKNOWN
                else DropReason.DISABLED_DEVICE
            )
            self._drop(reason, f"{standing.value} device", topics.telemetry(batch.device_id))
            return
        self.sightings.emit(Sighting(batch.device_id, batch.stream, at or datetime.now(UTC)))
        rows = sum(len(sample.values) for sample in batch.samples)
        lane = self._live if batch.origin == "live" else self._replay
        await lane.put(_Received(batch, rows, time.monotonic()))
        self._arrived.set()

    @property
    def pending(self) -> int:
        """Messages received and not yet committed."""
        unparsed = self._unparsed.qsize() + self._parsing
        return unparsed + self._live.qsize() + self._replay.qsize() + self._busy

    async def start(self) -> None:
        """Start the replay parser and the workers."""
        self._parser.spawn(self._parse_forever(), name="ingest-parse")
        # SQLite has one writer: a second worker would only wait for it.
        workers = self.options.workers if self._database.dialect == "postgresql" else 1
        for n in range(workers):
            self._workers.spawn(self._work(), name=f"ingest-{n}")

    async def drain(self) -> None:
        """Wait until everything received so far is committed (or failed) and acked."""
        await self._unparsed.join()
        await self._live.join()
        await self._replay.join()
        await self._acking.join()

    async def stop(self) -> None:
        """Store what is queued, then stop the workers (and whatever the drain left)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.drain()
        await self._parser.cancel()
        await self._workers.cancel()
        if self._resume is not None:
            self._resume.cancel()
        await self._acking.cancel()

    def _next_lane(self) -> _Lane | None:
        """Live if any waits; else replay, if one waits, a replay writer is free and the
        replay's share of time allows."""
        if not self._live.empty():
            return self._live
        writer_free = self._replaying < self.options.replay_writers
        if not self._replay.empty() and writer_free and self._resume is None:
            return self._replay
        return None

    async def _take(self) -> tuple[_Lane, list[_Received]]:
        """The next transaction's messages: one lane's oldest, then whatever queued there.

        A transaction holds one lane only: a live message never waits for replay rows.
        """
        while (lane := self._next_lane()) is None:
            self._arrived.clear()
            await self._arrived.wait()
        if lane is self._replay:  # counted before any await: no other worker slips past
            self._replaying += 1
        taken = [lane.get_nowait()]
        self._busy += 1
        rows = taken[0].rows
        linger = self.options.linger_ms / 1000
        deadline = time.monotonic() + linger
        while rows < self.options.max_rows:
            try:
                item = lane.get_nowait()
            except asyncio.QueueEmpty:
                if linger <= 0 or time.monotonic() >= deadline:
                    break
                await asyncio.sleep(linger / 4)
                continue
            taken.append(item)
            self._busy += 1
            rows += item.rows
        return lane, taken

    async def _work(self) -> None:
        while True:
            lane, taken = await self._take()
            started = time.monotonic()
            try:
                await self._commit(taken)
            except Exception:
                self._metrics.store_failures.inc()
                log.exception(
                    "storing %d telemetry messages failed; stations replay them", len(taken)
                )
                await asyncio.sleep(FAILURE_PAUSE)
            finally:
                self._busy -= len(taken)
                for _ in taken:
                    lane.task_done()
                if lane is self._replay:
                    self._replayed(time.monotonic() - started)

    def _replayed(self, took: float) -> None:
        """A replay transaction ended after ``took`` seconds: hold the next back for its
        share of time (until the latest pause ends), then wake the workers (one may take it)."""
        self._replaying -= 1
        loop = asyncio.get_running_loop()
        pause = took * (1 / self.options.replay_share - 1)
        self._replay_resumes_at = max(self._replay_resumes_at, loop.time() + pause)
        if self._resume is not None:
            self._resume.cancel()
        self._resume = loop.call_at(self._replay_resumes_at, self._resume_replay)

    def _resume_replay(self) -> None:
        self._resume = None
        self._arrived.set()

    async def _commit(self, taken: list[_Received]) -> None:
        stored = await store.store(self._database, [item.batch for item in taken])
        now = time.monotonic()
        for item in taken:
            self._metrics.lag.observe(now - item.at)
        self._metrics.batch_rows.observe(stored.points)
        self._metrics.rows_stored.inc(stored.points)
        self._metrics.quarantined.inc(stored.quarantined)
        self.commits.emit([item.batch for item in taken])
        # Acks go out on their own: the next transaction need not wait for the broker's PUBACK.
        for mark in stored.watermarks:
            self._acking.spawn(self._ack(mark))

    async def _ack(self, mark: store.Watermark) -> None:
        ack = Ack(mark.device_id, mark.stream, mark.acked_seq)
        try:
            await self._publish_ack(topics.telemetry_ack(mark.device_id), ack.encode())
        except Exception as error:  # the station asks again by replaying; nothing is lost
            log.warning("could not ack %s/%s: %s", mark.device_id, mark.stream, error)
            return
        self._metrics.acks.inc()
