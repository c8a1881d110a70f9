"""Telemetry ingest: validated batches from the link, stored in batched transactions, acked.

The receive loop only checks the device and enqueues, live and replayed messages in lanes
of their own (bounded: when the database falls behind, the loop waits instead of memory
growing). Workers take whatever has queued up in one lane — more under load, so commits
grow with the rate — store it exactly once, and publish each touched stream's watermark.
One worker takes live messages only, so a backlog's long transactions never hold a live
sample back; the others take live before replay. Replayed messages (up to a thousand
samples each) are parsed in threads, not on the receive loop: a live message that arrives
behind one is read at once instead of after it. A failed transaction is not retried here:
nothing of it was acked, so the station replays it.
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
PARSING = 8  # replayed messages parsed at once; past this the receive loop waits

Publish = Callable[[str, bytes], Awaitable[None]]
DropSink = Callable[[DropReason, str, str], None]


@dataclass(frozen=True)
class IngestOptions:
    """How ingest batches its work (from settings)."""

    limits: Limits = DEFAULT_LIMITS
    linger_ms: float = 0.0
    max_rows: int = 5_000
    queue_messages: int = 2_000  # in each lane, live and replay
    workers: int = 3  # taking either lane; on PostgreSQL one more takes live messages only
    shared: bool = True  # subscribe through $share so replicas split the load


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
        self._arrived = asyncio.Event()  # set on every enqueue; idle workers wait on it
        self._workers = TaskSet("ingest worker")
        self._busy = 0
        self._acking = TaskSet("ingest ack")
        # The batches of each commit, once it has committed (the live hub listens).
        self.commits: Listeners[list[Batch]] = Listeners("ingest commits")
        self._parsing = asyncio.Semaphore(PARSING)
        self._parsers = TaskSet("ingest parse")
        # Each accepted batch's station instance, on arrival (before any database work).
        self.sightings: Listeners[Sighting] = Listeners("ingest sightings")

    def routes(self) -> list[Route[Any]]:
        """The live and replay subscriptions (QoS 0 and 1, as the protocol sends them)."""
        share = topics.shared if self.options.shared else str
        return [
            Route(share(topics.ALL_TELEMETRY), 0, self._decode, self._accept),
            Route(share(topics.ALL_TELEMETRY_REPLAY), 1, self._later, self._parse_aside),
        ]

    def _decode(self, topic: topics.ParsedTopic, payload: bytes) -> Batch | Drop:
        assert topic.device_id is not None  # the routes match device topics only
        return parse_batch(payload, topic.device_id, limits=self.options.limits)

    def _later(self, topic: topics.ParsedTopic, payload: bytes) -> _Unparsed:
        assert topic.device_id is not None
        return _Unparsed(topic.device_id, payload, datetime.now(UTC))

    async def _parse_aside(self, message: _Unparsed) -> None:
        """Hand a replayed message to a thread; wait only when PARSING are under way."""
        await self._parsing.acquire()
        self._parsers.spawn(self._parse_then_accept(message))

    async def _parse_then_accept(self, message: _Unparsed) -> None:
        try:
            parsed = await asyncio.to_thread(
                parse_batch, message.payload, message.device_id, limits=self.options.limits
            )
        finally:
            self._parsing.release()
        if isinstance(parsed, Drop):
            self._drop(parsed.reason, parsed.detail, topics.telemetry_replay(message.device_id))
            return
        await self._accept(parsed, message.at)

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
        return len(self._parsers) + self._live.qsize() + self._replay.qsize() + self._busy

    async def start(self) -> None:
        """Start the workers: general ones, and one for live messages only."""
        both = (self._live, self._replay)
        if self._database.dialect == "postgresql":
            general = max(1, self.options.workers)
            lanes = [both] * general + [(self._live,)]
        else:
            lanes = [both]  # SQLite has one writer: a second worker would only wait for it
        for n, taking in enumerate(lanes):
            self._workers.spawn(self._work(taking), name=f"ingest-{n}")

    async def drain(self) -> None:
        """Wait until everything received so far is committed (or failed) and acked."""
        await self._parsers.join()
        await self._live.join()
        await self._replay.join()
        await self._acking.join()

    async def stop(self) -> None:
        """Store what is queued, then stop the workers (and whatever the drain left)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self.drain()
        await self._parsers.cancel()
        await self._workers.cancel()
        await self._acking.cancel()

    async def _ready(self, lanes: tuple[_Lane, ...]) -> _Lane:
        """The first of ``lanes`` with a message waiting, once there is one."""
        while True:
            for lane in lanes:
                if not lane.empty():
                    return lane
            self._arrived.clear()
            await self._arrived.wait()

    async def _take(self, lanes: tuple[_Lane, ...]) -> tuple[_Lane, list[_Received]]:
        """The next transaction's messages: one lane's oldest, then whatever queued there.

        A transaction holds one lane only: a live message never waits for replay rows.
        """
        lane = await self._ready(lanes)
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

    async def _work(self, lanes: tuple[_Lane, ...]) -> None:
        while True:
            lane, taken = await self._take(lanes)
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
