"""The replay: what the server has not acknowledged goes out again, in seq order, paced.

On each connect, every stored sample the ack watermark does not cover and that came before
the connection's first live sample is replayed at QoS 1, ``replay_batch`` samples a message
(fewer when their values pass MESSAGE_BUDGET bytes). A message is spliced from the outbox's
stored wire JSON in a thread, nothing decoded nor encoded again: the loop stays free for live
samples (bench.replay: 11 CPU-seconds per million points replayed before, 4 now).
At most ``replay_in_flight`` messages await their PUBACK and at most ``replay_ahead``
samples run past the watermark, so live samples are never stuck behind a deep backlog: the
broker and the server hold a few messages of it at most, whatever its size. Acks move the
watermark, and only they delete rows.

When the watermark stands still with rows waiting (a live message the broker dropped, say),
the replay starts again from it, but only once the stall is past the station's patience, so
that a slow server is not fed everything twice (bench.fleet: resending every 5 s made a
server 40 s behind fall further behind). The patience (``desktop.agent.patience``) is
``max(RESEND_AFTER, RESEND_LAG_FACTOR * the recent ack lag)``, the lag timed from each live
send to the ack that covers it; doubled for each resend in a row the watermark has not
passed; never past RESEND_CAP, so a lost message is still resent, within a minute. The
replay starts again at once, whatever the patience, on a connect and when the server's
status says it is back after being away.

``flush`` (the ``FlushOutbox`` command) replays now what a connect would, without the
``replay_ahead`` pacing: the in-flight window still bounds what awaits a PUBACK, samples
taken meanwhile still go live, and only the acks it then waits for delete anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from core.mqtt.link import LinkEvent, LinkState, NotConnectedError
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop
from core.protocol.messages import Ack, server_online
from core.protocol.telemetry import MAX_GAPS, Gap, Sample, encode_batch
from core.tasks import TaskSet
from desktop.agent.outbox import Row
from desktop.agent.patience import Patience
from desktop.agent.station import Station

log = logging.getLogger(__name__)
IDLE_LOOK_S = 1.0  # with nothing to send, how often the replay looks for a stalled watermark
# Bytes of values a replay message carries at most: half the protocol's default payload
# limit (256 KiB), so wide samples (up to 256 channels) never make a message the server drops.
MESSAGE_BUDGET = 128 * 1024
SAMPLE_OVERHEAD = 48  # bytes of '{"seq":…,"ts":…,"values":…}' around a sample's values


@dataclass(frozen=True)
class Flush:
    """What a flush did: samples it sent, the server's watermark, what still waits."""

    sent: int
    acked_seq: int
    pending: int  # samples still awaiting the server's ack (those taken since included)
    target: int  # the last seq stored when the flush began

    @property
    def complete(self) -> bool:
        """Whether the server acknowledged everything stored when the flush began."""
        return self.acked_seq >= self.target


class Replay:
    """Owns all replay state: the range to replay, the in-flight window, resends and acks."""

    def __init__(self, station: Station) -> None:
        self._station = station
        self._from = 0  # seq after which the current replay continues
        self._until = 0  # first seq that went (or goes) live on this connection
        self._ack_moved = time.monotonic()
        self._patience = Patience()  # how long a stalled watermark means a lost message
        self._wake = asyncio.Event()  # a connect or an ack: there may be more to send
        self._window = asyncio.Semaphore(station.config.replay_in_flight)
        self._in_flight = TaskSet(f"replay of {station.config.device_id}")
        self._flushing = 0  # flushes under way: while any is, replay_ahead does not hold back
        self._replayed = 0  # samples replayed since the process started (a flush counts its own)
        self._acked = asyncio.Event()  # set (and replaced) on every ack that moved the watermark
        self._server_away = False  # the server's status said it went away since we heard it
        self._resend_now = False  # the server is back: replay again from the watermark

    # -- as a part of the station -------------------------------------------------------

    def routes(self) -> Sequence[Route[Any]]:
        """The server's acks, and its status."""
        d = self._station.config.device_id
        return [
            Route(topics.telemetry_ack(d), 1, self._decode_ack, self._on_ack),
            Route(topics.SERVER_STATUS, 1, server_online, self._on_server_status),
        ]

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """The replay loop."""
        return [self._replay_forever]

    async def stop(self) -> None:
        """Cancel the replay messages in flight: the next start replays from the acks."""
        await self._in_flight.cancel()

    # -- live or replayed --------------------------------------------------------------------

    def live(self, seq: int) -> bool:
        """Whether sample ``seq`` goes out live: connected, and past what the replay covers."""
        return self._station.link.connected and seq >= self._until

    def sending_live(self, seq: int) -> None:
        """Sample ``seq`` goes out live now: the ack that covers it measures the server's lag."""
        self._patience.sent(seq, time.monotonic())

    def on_link(self, event: LinkEvent) -> None:
        """On a connect, replay everything before the connection's first live sample."""
        if event.state is not LinkState.CONNECTED:
            return
        self._restart()
        self._ack_moved = time.monotonic()  # a stall counts from this connect's replay
        self._patience.restart(self._until - 1, self._ack_moved)
        state = self._station.state
        state.replay_total, state.replay_sent = max(0, self._until - 1 - self._from), 0
        self._wake.set()

    def _restart(self) -> None:
        """Replay from the ack watermark up to the next seq, which goes live."""
        outbox = self._station.outbox
        self._from, self._until = outbox.acked_seq, outbox.next_seq

    # -- sending ------------------------------------------------------------------------------

    async def _replay_forever(self) -> None:
        station = self._station
        config, outbox = station.config, station.outbox
        while True:
            await station.link.wait_connected()
            if self._resend_now:
                self._resend_now = False
                if outbox.depth:
                    self._restart()
                    self._ack_moved = time.monotonic()
                    self._patience.restart(self._until - 1, self._ack_moved)
                    station.events.record(
                        "replay", f"the server is back: resending from {self._from + 1}"
                    )
            paced = not self._flushing and self._from - outbox.acked_seq >= config.replay_ahead
            if self._from < self._until - 1 and not paced:
                async with station.io:
                    dropped = outbox.dropped()[:MAX_GAPS]
                # Every replay batch names what the cap dropped until the server's ack passes it.
                gaps = [Gap(d.first_seq, d.last_seq, d.reason) for d in dropped]
                # Read beside the writer (a sample is never committed behind this read) and
                # spliced in the same thread: the loop stays free for live samples.
                message = await asyncio.to_thread(self._next_message, self._from, gaps)
                if message is None:
                    self._from = self._until - 1
                    continue
                payload, last, count = message
                await self._window.acquire()
                task = self._in_flight.spawn(self._send(payload, last, count))
                task.add_done_callback(lambda _: self._window.release())
                self._from = last
                station.state.replay_sent += count
                self._replayed += count
                continue
            self._resend_if_stalled()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_LOOK_S):
                    await self._wake.wait()

    def _next_message(self, after: int, gaps: list[Gap]) -> tuple[bytes, int, int] | None:
        """The next replay message after seq ``after``: its payload, last seq and samples;
        None when nothing before the first live seq is left. Blocking: run it in a thread."""
        station = self._station
        rows = station.outbox.rows(after, station.config.replay_batch)
        rows = _fitting([row for row in rows if row.seq < self._until])
        if not rows:
            return None
        device_id, stream = station.config.device_id, station.outbox.stream
        return replay_message(device_id, stream, rows, gaps), rows[-1].seq, len(rows)

    async def _send(self, payload: bytes, last: int, count: int) -> None:
        device_id = self._station.config.device_id
        try:
            await self._station.link.publish(topics.telemetry_replay(device_id), payload, qos=1)
        except Exception as error:  # the link went; the next connect replays from the acks
            log.info("replay batch %d..%d not sent: %s", last - count + 1, last, error)

    def _resend_if_stalled(self) -> None:
        """Replay again from the watermark if it stood still past the patience, rows waiting."""
        wait = self._patience.wait()
        stalled = time.monotonic() - self._ack_moved > wait
        if stalled and self._station.outbox.depth and self._station.state.last_ts:
            self._restart()
            self._ack_moved = time.monotonic()
            self._patience.resent(self._until - 1, self._ack_moved)
            self._station.events.record(
                "replay", f"no ack for {wait:.0f} s: resending from {self._from + 1}"
            )

    async def _on_server_status(self, online: bool) -> None:
        """A server that went away lost what it had received and not stored (it acknowledges
        messages to the broker as they arrive): once it is back, replay from the watermark
        at once rather than a patience later. The retained status a connect brings finds
        nothing away and does nothing."""
        if not online:
            self._server_away = True
            return
        if not self._server_away:
            return
        self._server_away = False
        self._resend_now = True  # by the replay loop: it may be reading a message meanwhile
        self._wake.set()

    # -- flush ----------------------------------------------------------------------------------

    async def flush(self, *, deadline: float) -> Flush:
        """Replay the whole backlog now and wait (until ``deadline``, the loop's clock) for
        the server's acks to cover it; ``NotConnectedError`` if the link is down."""
        station = self._station
        outbox, state = station.outbox, station.state
        if not station.link.connected:
            msg = "not connected to the broker: the backlog waits for the link"
            raise NotConnectedError(msg)
        target, replayed = outbox.next_seq - 1, self._replayed
        if outbox.acked_seq < target:
            self._restart()
            state.replay_total, state.replay_sent = max(0, self._until - 1 - self._from), 0
            station.events.record("replay", f"flushing {state.replay_total} samples now")
        self._flushing += 1
        self._wake.set()
        try:
            while outbox.acked_seq < target:
                acked = self._acked
                try:
                    async with asyncio.timeout_at(deadline):
                        await acked.wait()
                except TimeoutError:
                    break
        finally:
            self._flushing -= 1
        return Flush(self._replayed - replayed, outbox.acked_seq, outbox.depth, target)

    # -- acks ---------------------------------------------------------------------------------

    def _decode_ack(self, topic: topics.ParsedTopic, payload: bytes) -> Ack | Drop:
        return Ack.parse(payload, self._station.config.device_id)

    async def _on_ack(self, ack: Ack) -> None:
        station = self._station
        outbox = station.outbox
        if ack.stream != outbox.stream or ack.acked_seq <= outbox.acked_seq:
            return
        if ack.acked_seq >= outbox.next_seq:
            log.warning("ack %d beyond the last seq %d ignored", ack.acked_seq, outbox.next_seq - 1)
            return
        async with station.io:
            await asyncio.to_thread(outbox.acknowledge, ack.acked_seq)
        self._ack_moved = time.monotonic()
        self._patience.acked(ack.acked_seq, self._ack_moved)
        station.state.count(outbox)
        self._wake.set()
        self._acked.set()
        self._acked = asyncio.Event()


def _fitting(rows: list[Row]) -> list[Row]:
    """The first rows whose values fit MESSAGE_BUDGET (at least one: a sample is whole)."""
    size = 0
    for n, row in enumerate(rows):
        size += len(row.values_json) + SAMPLE_OVERHEAD
        if size > MESSAGE_BUDGET and n:
            return rows[:n]
    return rows


def replay_message(device_id: str, stream: str, rows: Sequence[Row], gaps: Sequence[Gap]) -> bytes:
    """A replay message spliced from stored rows, byte for byte what ``encode_batch`` makes
    of the same samples: the outbox keeps each sample's values as their wire JSON."""
    head = encode_batch(
        device_id=device_id,
        stream=stream,
        origin="replay",
        samples=[Sample(1, 0, {"x": 0})],  # a placeholder, cut out below
        gaps=gaps,
    ).decode()
    before, _, after = head.partition('"samples":[{"seq":1,"ts":0,"values":{"x":0}}]')
    samples = ",".join(f'{{"seq":{r.seq},"ts":{r.ts},"values":{r.values_json}}}' for r in rows)
    return f'{before}"samples":[{samples}]{after}'.encode()
