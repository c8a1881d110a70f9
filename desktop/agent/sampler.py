"""Sampling: read the sources every interval, commit each sample, send it live if it may.

Every sample is committed to the outbox before anything is sent. While connected, a sample
past what the replay covers goes out at once at QoS 0; a send that is lost is the replay's
to make good. When the outbox's cap turns samples away or drops old ones, the log says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.telemetry import Sample, Value, encode_batch
from core.tasks import TaskSet
from desktop.agent.outbox import OutboxFullError
from desktop.agent.replay import Replay
from desktop.agent.sources import Source
from desktop.agent.station import Station

log = logging.getLogger(__name__)
LIVE_PENDING = 100  # live sends not yet handed to the socket; past this, replay catches up
CAP_REPORT_EVERY = 1000  # samples refused or dropped between two log lines about it
# At start, how long the first sample waits for the broker. A sample taken before the first
# connect is in the replay's range, so it reached the server marked replayed after every
# start, though nothing was ever offline. A connect takes well under a second; a broker
# that is not there in three, the station samples without (and those samples do replay).
FIRST_CONNECT_WAIT_S = 3.0


class Sampler:
    """Samples the station's sources into the outbox on the interval in effect."""

    def __init__(self, station: Station, sources: Sequence[Source], replay: Replay) -> None:
        self._station = station
        self._sources = list(sources)
        self._replay = replay
        self._live = TaskSet(f"live sends of {station.config.device_id}")
        self._retimed = asyncio.Event()  # the sampling interval changed
        self._unwritten = 0  # samples the outbox could not write since the last one it did

    # -- as a part of the station -------------------------------------------------------

    def routes(self) -> Sequence[Route[Any]]:
        """None: sampling listens to nothing."""
        return []

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """The sampling loop."""
        return [self._sample_forever]

    async def stop(self) -> None:
        """Drop the live sends not yet made: their samples are in the outbox."""
        await self._live.cancel()

    def retime(self) -> None:
        """Take a new interval at once, counted from the last sample."""
        self._retimed.set()

    # -- sampling -------------------------------------------------------------------------

    async def sample_once(self) -> Sample | None:
        """Read every source, commit the sample, and send it live if connected."""
        station = self._station
        state, outbox = station.state, station.outbox
        values: dict[str, Value] = {}
        for source in self._sources:
            values.update(source.read())
        ts = int(time.time() * 1000)
        try:
            async with station.io:
                dropped_before = outbox.dropped_total
                (sample,) = await asyncio.to_thread(outbox.append, [(ts, values)])
                if outbox.dropped_total != dropped_before:
                    self._report_drops(dropped_before)
        except OutboxFullError as error:
            state.refused += 1
            if state.refused == 1 or state.refused % CAP_REPORT_EVERY == 0:
                station.events.record("cap", f"{error} ({state.refused} refused so far)")
            return None
        except sqlite3.Error as error:  # a full or failing disk: the sample is not taken
            self._not_written(error)
            return None
        if self._unwritten:
            text = f"writing samples again, after {self._unwritten} could not be written"
            station.events.record("disk", text)
            log.warning("%s: %s", station.config.device_id, text)  # ends the warning above
            self._unwritten = 0
        state.values, state.last_seq, state.last_ts = values, sample.seq, ts
        state.count(outbox)
        if self._replay.live(sample.seq):
            payload = encode_batch(
                device_id=station.config.device_id,
                stream=outbox.stream,
                origin="live",
                samples=[sample],
            )
            self._replay.sending_live(sample.seq)
            self._send_live(payload)
        return sample

    def _not_written(self, error: sqlite3.Error) -> None:
        """Say once, then every CAP_REPORT_EVERY samples, that samples go unwritten.

        Such a sample gets no seq (the outbox moves its counters only after a commit), so
        nothing is lost that the server waits for; a traceback per sample helps no one.
        """
        self._unwritten += 1
        if self._unwritten == 1 or self._unwritten % CAP_REPORT_EVERY == 0:
            text = f"samples not written ({self._unwritten} so far): {error}"
            self._station.events.record("disk", text)
            log.warning("%s: %s", self._station.config.device_id, text)

    def _send_live(self, payload: bytes) -> None:
        """Publish a live sample without waiting: a dying link must never stall sampling.

        The sample is in the outbox either way; if this send is lost, the replay resends it.
        """
        if len(self._live) >= LIVE_PENDING:
            return
        self._live.spawn(
            self._publish_live(topics.telemetry(self._station.config.device_id), payload)
        )

    async def _publish_live(self, topic: str, payload: bytes) -> None:
        with contextlib.suppress(Exception):  # counted as unacked; replay covers it
            await self._station.link.publish(topic, payload)

    def _report_drops(self, before: int) -> None:
        """Log a cap drop: when a range starts, then every CAP_REPORT_EVERY samples."""
        outbox = self._station.outbox
        total = outbox.dropped_total
        if before == 0 or total // CAP_REPORT_EVERY != before // CAP_REPORT_EVERY:
            spans = ", ".join(f"{r.first_seq}..{r.last_seq}" for r in outbox.dropped()[-3:])
            self._station.events.record(
                "cap", f"outbox cap ({outbox.max_rows}) reached: dropped seqs {spans}"
            )
        self._station.state.dropped = total

    async def _sample_forever(self) -> None:
        state = self._station.state
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_CONNECT_WAIT_S):
                await self._station.link.wait_connected()
        next_at = time.monotonic()
        while True:
            try:
                await self.sample_once()
            except Exception:
                log.exception("sampling failed")
            last, next_at = next_at, next_at + state.interval_s
            while (delay := next_at - time.monotonic()) > 0:
                self._retimed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._retimed.wait()
                    # A new interval counts from the last sample, not from the old schedule.
                    next_at = last + state.interval_s
