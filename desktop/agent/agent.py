"""The station agent: samples into the outbox, streams live, replays the backlog, obeys acks.

Every sample is committed to the outbox before anything is sent. While connected, a new
sample goes out at once at QoS 0 (live). On each connect, what the server has not
acknowledged is replayed at QoS 1 in seq order, a few batches in flight at a time so live
samples are never stuck behind it; later, anything left unacknowledged for RESEND_AFTER
(a live message the broker dropped, say) is replayed too. Rows leave the outbox only when
the server's ack watermark covers them.

The sampling interval and heartbeat period come from the device's configuration: the
server's signed ``config/desired`` is verified, applied at once, kept in the outbox file
(a restart offline keeps it) and answered on ``config/reported``; the station's own flags
only fill in what no configuration has said yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.mqtt.endpoint import Endpoint
from core.mqtt.routing import Route
from core.mqtt.supervisor import (
    LinkEvent,
    LinkState,
    NotConnectedError,
    Options,
    Outgoing,
    Supervisor,
)
from core.protocol import topics
from core.protocol.drops import Drop, DropReason
from core.protocol.messages import Ack, Heartbeat, Status
from core.protocol.signing import VerifyingKey
from core.protocol.station_config import (
    ConfigReport,
    DesiredConfig,
    Outcome,
    Refused,
    read_desired,
)
from core.protocol.telemetry import MAX_GAPS, Gap, Sample, Value, encode_batch
from core.tasks import cancel_and_wait
from desktop.agent.outbox import CapPolicy, Outbox, OutboxFullError
from desktop.agent.sources import Source

log = logging.getLogger(__name__)
RESEND_AFTER = 5.0  # seconds an unacknowledged sample waits before it is replayed again
EVENT_LOG = 200  # events kept for the window
LIVE_PENDING = 100  # live sends not yet handed to the socket; past this, replay catches up


@dataclass(frozen=True)
class AgentConfig:
    """One station: who it is, where the broker is, how often it samples, where it keeps data."""

    device_id: str
    endpoint: Endpoint
    data_dir: Path
    interval_s: float = 1.0
    heartbeat_s: int = 5
    replay_batch: int = 500  # samples per replay message (the protocol allows 1,000)
    replay_in_flight: int = 4  # replay messages awaiting PUBACK; live goes between them
    # Samples replayed past the server's ack watermark at most: a broker's PUBACK is not
    # the server's pace, and a deeper pipeline only queues replay ahead of live samples.
    replay_ahead: int = 1_500
    max_rows: int = 5_000_000
    policy: CapPolicy = CapPolicy.DROP_OLDEST
    # The server's public keys: desired configurations must be signed by one of them.
    server_keys: tuple[VerifyingKey, ...] = ()

    @property
    def outbox_path(self) -> Path:
        """The station's outbox file."""
        return self.data_dir / f"{self.device_id}.outbox.db"


@dataclass(frozen=True)
class AgentEvent:
    """Something the station's log shows: connects, drops, replays, cap events."""

    at: float  # time.time()
    kind: str
    text: str


@dataclass
class AgentState:
    """What the window shows; updated in place by the agent."""

    device_id: str
    stream: str = ""
    link: LinkEvent | None = None
    values: dict[str, Value] = field(default_factory=dict)
    last_seq: int = 0
    last_ts: int = 0
    acked_seq: int = 0
    depth: int = 0
    replay_total: int = 0  # backlog size when the current replay began
    replay_sent: int = 0
    refused: int = 0  # samples the refuse policy turned away
    dropped: int = 0  # samples the drop-oldest policy removed before the server had them
    config_version: int = 0  # the configuration applied; 0 while none has been
    settings: dict[str, Any] = field(default_factory=dict)  # as the configuration gave them
    interval_s: float = 1.0  # in effect: the configuration's, else the station's flag
    heartbeat_s: int = 5
    events: deque[AgentEvent] = field(default_factory=lambda: deque(maxlen=EVENT_LOG))


class Agent:
    """Runs one station until stopped."""

    def __init__(self, config: AgentConfig, sources: Sequence[Source]) -> None:
        self.config = config
        self.sources = list(sources)
        self.outbox = Outbox(config.outbox_path, max_rows=config.max_rows, policy=config.policy)
        self.state = AgentState(config.device_id, stream=self.outbox.stream)
        self._io = asyncio.Lock()  # the outbox's writing connection, one call at a time
        d = config.device_id
        status = topics.status(d)
        self.supervisor = Supervisor(
            config.endpoint,
            Options(
                client_id=f"pp-station-{d}",
                birth=Outgoing(status, Status(d, "online").encode(), qos=1, retain=True),
                will=Outgoing(status, Status(d, "offline", "lost").encode(), qos=1, retain=True),
                farewell=Outgoing(
                    status, Status(d, "offline", "clean").encode(), qos=1, retain=True
                ),
            ),
        )
        self.supervisor.add_listener(self._on_link)
        self._wake = asyncio.Event()
        self._live: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[Callable[[AgentEvent], None]] = []
        self._started = time.monotonic()
        self._replay_from = 0  # seq after which the current replay continues
        self._replay_until = 0  # first seq that went (or goes) live on this connection
        self._ack_moved = time.monotonic()
        self._retimed = asyncio.Event()  # the sampling interval changed
        self._reported = -1  # the applied version the server was last told of
        self._sync_counts()
        self._use_settings(*self.outbox.applied_config())

    # -- observing ---------------------------------------------------------------------

    def add_listener(self, listener: Callable[[AgentEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _event(self, kind: str, text: str) -> None:
        event = AgentEvent(time.time(), kind, text)
        self.state.events.append(event)
        log.info("%s: %s", self.config.device_id, text)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("agent listener failed")

    def _sync_counts(self) -> None:
        self.state.depth = self.outbox.depth
        self.state.acked_seq = self.outbox.acked_seq

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to acks, connect, and start sampling, replaying and heartbeats."""
        d = self.config.device_id
        await self.supervisor.route(
            Route(topics.telemetry_ack(d), 1, self._decode_ack, self._on_ack)
        )
        await self.supervisor.route(
            Route(topics.config_desired(d), 1, self._decode_desired, self._on_desired)
        )
        await self.supervisor.start()
        loop = asyncio.get_running_loop()
        for work in (self._sample_forever, self._replay_forever, self._heartbeat_forever):
            self._tasks.append(loop.create_task(work(), name=f"{work.__name__}"))

    async def stop(self) -> None:
        """Stop sampling, publish the clean farewell, close the outbox."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        await self.supervisor.stop()
        async with self._io:
            await asyncio.to_thread(self.outbox.close)

    # -- sampling and live -----------------------------------------------------------------

    async def sample_once(self) -> Sample | None:
        """Read every source, commit the sample, and send it live if connected."""
        values: dict[str, Value] = {}
        for source in self.sources:
            values.update(source.read())
        ts = int(time.time() * 1000)
        try:
            async with self._io:
                dropped_before = self.outbox.dropped_total
                (sample,) = await asyncio.to_thread(self.outbox.append, [(ts, values)])
                if self.outbox.dropped_total != dropped_before:
                    self._report_drops(dropped_before)
        except OutboxFullError as error:
            self.state.refused += 1
            if self.state.refused == 1 or self.state.refused % 1000 == 0:
                self._event("cap", f"{error} ({self.state.refused} refused so far)")
            return None
        self.state.values, self.state.last_seq, self.state.last_ts = values, sample.seq, ts
        self._sync_counts()
        if self.supervisor.connected and sample.seq >= self._replay_until:
            payload = encode_batch(
                device_id=self.config.device_id,
                stream=self.outbox.stream,
                origin="live",
                samples=[sample],
            )
            self._send_live(payload)
        return sample

    def _send_live(self, payload: bytes) -> None:
        """Publish a live sample without waiting: a dying link must never stall sampling.

        The sample is in the outbox either way; if this send is lost, the replay resends it.
        """
        if len(self._live) >= LIVE_PENDING:
            return
        topic = topics.telemetry(self.config.device_id)
        task = asyncio.get_running_loop().create_task(self._publish_live(topic, payload))
        self._live.add(task)
        task.add_done_callback(self._live.discard)

    async def _publish_live(self, topic: str, payload: bytes) -> None:
        with contextlib.suppress(Exception):  # counted as unacked; replay covers it
            await self.supervisor.publish(topic, payload)

    def _report_drops(self, before: int) -> None:
        """Log a cap drop: when a range starts, then every thousand samples."""
        total = self.outbox.dropped_total
        if before == 0 or total // 1000 != before // 1000:
            ranges = self.outbox.dropped()
            spans = ", ".join(f"{r.first_seq}..{r.last_seq}" for r in ranges[-3:])
            self._event("cap", f"outbox cap ({self.outbox.max_rows}) reached: dropped seqs {spans}")
        self.state.dropped = total

    async def _sample_forever(self) -> None:
        next_at = time.monotonic()
        while True:
            try:
                await self.sample_once()
            except Exception:
                log.exception("sampling failed")
            last, next_at = next_at, next_at + self.state.interval_s
            while (delay := next_at - time.monotonic()) > 0:
                self._retimed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._retimed.wait()
                    # A new interval counts from the last sample, not from the old schedule.
                    next_at = last + self.state.interval_s

    # -- replay ------------------------------------------------------------------------------

    def _on_link(self, event: LinkEvent) -> None:
        self.state.link = event
        if event.state is LinkState.CONNECTED:
            # Samples from now on go live; everything before them not yet acked is replayed.
            self._replay_from = self.outbox.acked_seq
            self._replay_until = self.outbox.next_seq
            backlog = max(0, self._replay_until - 1 - self._replay_from)
            self.state.replay_total, self.state.replay_sent = backlog, 0
            self._event("link", f"connected to {self.config.endpoint}; {backlog} to replay")
            self._wake.set()
        elif event.state is LinkState.RECONNECTING:
            self._event("link", f"link lost: {event.detail}")
        elif event.state is LinkState.AUTH_FAILED:
            self._event("link", event.detail)

    async def _replay_forever(self) -> None:
        window = asyncio.Semaphore(self.config.replay_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        while True:
            await self.supervisor.wait_connected()
            ahead = self._replay_from - self.outbox.acked_seq
            if self._replay_from < self._replay_until - 1 and ahead < self.config.replay_ahead:
                # Read beside the writer: a sample is never committed behind this read.
                batch = await asyncio.to_thread(
                    self.outbox.pending, self._replay_from, self.config.replay_batch
                )
                async with self._io:
                    dropped = self.outbox.dropped()[:MAX_GAPS]
                batch = [s for s in batch if s.seq < self._replay_until]
                if not batch:
                    self._replay_from = self._replay_until - 1
                    continue
                # Every replay batch names what the cap dropped until the server's ack passes it.
                gaps = [Gap(d.first_seq, d.last_seq, d.reason) for d in dropped]
                await window.acquire()
                task = asyncio.get_running_loop().create_task(self._send_replay(batch, gaps))
                task.add_done_callback(lambda _: window.release())
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                self._replay_from = batch[-1].seq
                self.state.replay_sent += len(batch)
                continue
            self._resend_if_stalled()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()

    async def _send_replay(self, batch: list[Sample], gaps: list[Gap]) -> None:
        payload = await asyncio.to_thread(  # ~10 ms for 500 samples: not on the loop
            encode_batch,
            device_id=self.config.device_id,
            stream=self.outbox.stream,
            origin="replay",
            samples=batch,
            gaps=gaps,
        )
        try:
            await self.supervisor.publish(
                topics.telemetry_replay(self.config.device_id), payload, qos=1
            )
        except Exception as error:  # the link went; the next connect replays from the acks
            log.info("replay batch %d..%d not sent: %s", batch[0].seq, batch[-1].seq, error)

    def _resend_if_stalled(self) -> None:
        """Replay again from the watermark if it has not moved for a while with rows waiting."""
        stalled = time.monotonic() - self._ack_moved > RESEND_AFTER
        if stalled and self.outbox.depth and self.state.last_ts:
            self._replay_from = self.outbox.acked_seq
            self._replay_until = self.outbox.next_seq
            self._ack_moved = time.monotonic()
            self._event(
                "replay", f"no ack for {RESEND_AFTER:.0f} s: resending from {self._replay_from + 1}"
            )

    # -- acks and heartbeats ------------------------------------------------------------------

    def _decode_ack(self, topic: topics.ParsedTopic, payload: bytes) -> Ack | Drop:
        return Ack.parse(payload, self.config.device_id)

    async def _on_ack(self, ack: Ack) -> None:
        if ack.stream != self.outbox.stream or ack.acked_seq <= self.outbox.acked_seq:
            return
        if ack.acked_seq >= self.outbox.next_seq:
            log.warning(
                "ack %d beyond the last seq %d ignored", ack.acked_seq, self.outbox.next_seq - 1
            )
            return
        async with self._io:
            await asyncio.to_thread(self.outbox.acknowledge, ack.acked_seq)
        self._ack_moved = time.monotonic()
        self._sync_counts()
        self._wake.set()

    async def _heartbeat_forever(self) -> None:
        last = time.monotonic()
        while True:  # looks every second, so a shorter period applies at once
            await asyncio.sleep(min(1.0, self.state.heartbeat_s))
            if time.monotonic() - last >= self.state.heartbeat_s:
                last = time.monotonic()
                await self._beat()

    async def _beat(self) -> None:
        beat = Heartbeat(
            self.config.device_id,
            interval_s=self.state.heartbeat_s,
            uptime_s=int(time.monotonic() - self._started),
            outbox=self.outbox.depth,
            config_version=self.state.config_version,
        )
        with contextlib.suppress(NotConnectedError):
            await self.supervisor.publish(topics.heartbeat(self.config.device_id), beat.encode())

    # -- configuration --------------------------------------------------------------------

    def _use_settings(self, version: int, settings: dict[str, Any]) -> None:
        state = self.state
        state.config_version, state.settings = version, settings
        state.interval_s = float(settings.get("interval_s", self.config.interval_s))
        state.heartbeat_s = int(settings.get("heartbeat_s", self.config.heartbeat_s))
        self._retimed.set()

    def _decode_desired(
        self, topic: topics.ParsedTopic, payload: bytes
    ) -> DesiredConfig | Refused | Drop:
        if not payload:  # the server cleared the retained message: nothing is asked
            return Drop(DropReason.MALFORMED, "empty desired configuration")
        now_ms = int(time.time() * 1000)
        return read_desired(payload, self.config.device_id, self.config.server_keys, now_ms=now_ms)

    async def _on_desired(self, desired: DesiredConfig | Refused) -> None:
        applied = self.state.config_version
        if isinstance(desired, Refused):
            self._event("config", f"desired configuration refused: {desired.detail}")
            await self._report("rejected", desired.version or 0, desired.detail)
            return
        if desired.version < applied:  # say so: a restored server must not think it applies
            detail = f"version {desired.version} is older than the applied {applied}"
            self._event("config", f"desired configuration refused: {detail}")
            await self._report("rejected", desired.version, detail)
            return
        if desired.version == applied:  # the retained copy, again on every connect
            if self._reported != applied:
                await self._report("applied", applied)
            return
        async with self._io:
            await asyncio.to_thread(self.outbox.save_config, desired.version, desired.settings)
        self._use_settings(desired.version, desired.settings)
        self._event(
            "config",
            f"configuration v{desired.version} applied: a sample every "
            f"{self.state.interval_s:g} s, a heartbeat every {self.state.heartbeat_s} s",
        )
        await self._report("applied", desired.version)
        await self._beat()  # the server sees the new version without waiting a period

    async def _report(self, outcome: Outcome, desired_version: int, detail: str = "") -> None:
        state = self.state
        report = ConfigReport(
            self.config.device_id,
            state.config_version,
            state.settings,
            outcome,
            desired_version,
            detail,
        )
        topic = topics.config_reported(self.config.device_id)
        try:
            await self.supervisor.publish(topic, report.encode(), qos=1, retain=True)
        except Exception as error:  # the retained desired comes again on the next connect
            log.info("config report not sent: %s", error)
            return
        if outcome == "applied":
            self._reported = state.config_version

    def snapshot(self) -> dict[str, Any]:
        """A plain copy of the state, for logs and tests."""
        state = self.state
        return {
            "device_id": state.device_id,
            "stream": state.stream,
            "link": state.link.state.value if state.link else "stopped",
            "last_seq": state.last_seq,
            "acked_seq": state.acked_seq,
            "depth": state.depth,
            "config_version": state.config_version,
        }
