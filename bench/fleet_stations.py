"""The fleet bench's station process: a ``Fleet`` of real agents in one event loop, timed.

Each station is the real agent (``desktop.agent.fleet``: outbox, sampler, replay, heartbeat,
commands, sync, its own broker connection) on ``asyncio.run``, as ``precisionpulse
simulate`` runs it; only its source is the bench's, ``Channels``, which notes when it was
read. A sample's seq is its station's count of reads (a fresh outbox numbers from 1), so
the n-th read's time is seq n's taking.

Ack lag, per sample: from its taking (the source read, just before its timestamp and its
commit to the outbox) to the arrival at its station of the server's ack that covers it
(the station's router has decoded it; the outbox deletes the rows right after). The server
acks after its commit, so this is taking → stored → told, end to end.

The process answers on its results queue: ``ready`` once every station is connected;
``warm`` once the start-up's backlog is acked (or the most it may wait is over); then, told
a window (wall-clock times, one clock for every process of the machine), the window's
figures once its samples are acked or the grace is over; then it stops every station and
says ``stopped``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import random
import resource
import shutil
import tempfile
import time
from array import array
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.command_stations import p99
from core.mqtt.endpoint import Endpoint
from core.mqtt.routing import Delivery
from core.protocol.messages import Ack
from core.protocol.signing import VerifyingKey
from core.protocol.telemetry import Value
from desktop.agent.agent import Agent
from desktop.agent.fleet import Fleet, template

Queue = Any  # multiprocessing's queues are not subscriptable types at runtime
CONNECT_S = 120.0  # 250 stations a process connecting on a 2-core box shared with the rest
POLL_S = 0.1  # how often connects, the warm-up and the grace look again
WARM_S = 2.0  # a settled station's backlog: the samples of its last 2 s (the lag target)
TICK_S = 0.05  # the loop-lag probe's period: how late a timer fires says how busy the loop is


class Channels:
    """``count`` channels (a counter, a temperature with 2 decimals, a switch, in turn);
    each read's wall-clock time is noted in ``taken``."""

    def __init__(self, count: int, seed: int) -> None:
        self._count = count
        self._rng = random.Random(seed)
        self._parts = 0
        self.taken = array("d")

    def read(self) -> dict[str, Value]:
        """The next sample of every channel."""
        self.taken.append(time.time())
        self._parts += self._rng.randint(0, 3)
        values: dict[str, Value] = {}
        for n in range(self._count):
            kind = n % 3
            if kind == 0:
                values[f"c{n}"] = self._parts + n
            elif kind == 1:
                values[f"c{n}"] = Decimal(2000 + self._rng.randint(0, 200)).scaleb(-2)
            else:
                values[f"c{n}"] = self._rng.random() < 0.5
        return values


class Timing:
    """One stream's acks, timed against its samples' taking, for samples in the window."""

    def __init__(self, stream: str, source: Channels, lags: array[float]) -> None:
        self._stream, self._source, self._lags = stream, source, lags
        self.acked = 0  # the highest seq an ack covered
        self.window = (float("inf"), float("inf"))

    @classmethod
    def of_agent(cls, agent: Agent, source: Channels, lags: array[float]) -> Timing:
        """Timing fed by the acks an agent's link delivers."""
        timing = cls(agent.outbox.stream, source, lags)

        def delivered(delivery: Delivery) -> None:
            if isinstance(delivery.envelope, Ack):
                timing.on_ack(delivery.envelope)

        agent.supervisor.router.delivered.add(delivered)
        return timing

    def on_ack(self, ack: Ack) -> None:
        """Each newly covered sample of the window: its lag, taking to now."""
        if ack.stream != self._stream:
            return
        now, taken = time.time(), self._source.taken
        start, end = self.window
        for seq in range(self.acked + 1, min(ack.acked_seq, len(taken)) + 1):
            if start <= taken[seq - 1] < end:
                self._lags.append(now - taken[seq - 1])
        self.acked = max(self.acked, ack.acked_seq)

    def in_window(self) -> tuple[int, int]:
        """Seqs (first, last) of the samples taken within the window, as far as known."""
        taken, (start, end) = self._source.taken, self.window
        return bisect.bisect_left(taken, start) + 1, bisect.bisect_left(taken, end)

    def unacked_lags(self, now: float) -> list[float]:
        """For the window's samples no ack covers yet: how long each has waited so far."""
        first, last = self.in_window()
        taken = self._source.taken
        return [now - taken[seq - 1] for seq in range(max(first, self.acked + 1), last + 1)]


def raise_open_files() -> int:
    """The soft limit on open files raised to the hard one: each station holds a socket and
    a handful of SQLite files (outbox, its reader, ledger, replica, lock). Returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def process(
    port: int,
    credentials: dict[str, str],
    key_pem: bytes,
    rate_hz: float,
    channels: int,
    niceness: int,
    commands: Queue,
    results: Queue,
) -> None:
    """The station process: connect every station, time one window, stop.

    ``niceness`` lowers its priority: real stations run on machines of their own, and
    here their load would otherwise take its share of the server's cores.
    """
    os.nice(niceness)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("core.mqtt.supervisor").setLevel(logging.CRITICAL)  # 250 lines a drop
    raise_open_files()
    asyncio.run(_run(port, credentials, key_pem, rate_hz, channels, commands, results))


async def _run(
    port: int,
    credentials: dict[str, str],
    key_pem: bytes,
    rate_hz: float,
    channels: int,
    commands: Queue,
    results: Queue,
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="pp-fleet-"))
    keys = (VerifyingKey.from_pem(key_pem),)
    sources = [Channels(channels, seed=n) for n in range(len(credentials))]
    fleet = Fleet(
        credentials,
        template(Endpoint("127.0.0.1", port), data_dir, rate_hz, keys),
        sources=lambda n: [sources[n]],
    )
    lags: array[float] = array("d")
    timings = [Timing.of_agent(a, s, lags) for a, s in zip(fleet.agents, sources, strict=True)]
    try:
        began = time.monotonic()
        await fleet.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_S):
                while fleet.connected() < len(fleet.agents):  # noqa: ASYNC110 (a bench)
                    await asyncio.sleep(POLL_S)
        results.put(("ready", fleet.connected(), time.monotonic() - began))
        least_s, most_s = await asyncio.to_thread(commands.get)
        results.put(("warm", *await _warm(fleet, rate_hz, least_s, most_s)))
        start, end, grace_s = await asyncio.to_thread(commands.get)
        results.put(("figures", await _window(fleet, timings, lags, start, end, grace_s)))
    finally:
        await fleet.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    results.put(("stopped",))


async def _warm(fleet: Fleet, rate_hz: float, least_s: float, most_s: float) -> tuple[int, float]:
    """Past the start-up: ``least_s``, then until the backlog is down to WARM_S of samples a
    station (what the connects' replays left is acked), ``most_s`` at most. The backlog
    left and the seconds waited."""
    began = time.monotonic()
    await asyncio.sleep(least_s)
    settled = len(fleet.agents) * max(1.0, rate_hz * WARM_S)
    backlog = sum(a.state.depth for a in fleet.agents)
    while backlog > settled and time.monotonic() - began < most_s:
        await asyncio.sleep(POLL_S)
        backlog = sum(a.state.depth for a in fleet.agents)
    return backlog, time.monotonic() - began


async def _window(
    fleet: Fleet, timings: list[Timing], lags: array[float], start: float, end: float, grace: float
) -> dict[str, Any]:
    """Sample the fleet at ``start`` and ``end`` (wall clock); the window's figures."""
    for timing in timings:
        timing.window = (start, end)
    late: list[float] = []
    probe = asyncio.get_running_loop().create_task(_loop_lag(late))
    await asyncio.sleep(max(0.0, start - time.time()))
    taken = [a.state.last_seq for a in fleet.agents]
    acked = [a.state.acked_seq for a in fleet.agents]
    backlog_start = sum(a.state.depth for a in fleet.agents)
    late.clear()
    await asyncio.sleep(max(0.0, end - time.time()))
    wall = time.time() - start
    probe.cancel()
    taken_n = sum(a.state.last_seq - n for a, n in zip(fleet.agents, taken, strict=True))
    acked_n = sum(a.state.acked_seq - n for a, n in zip(fleet.agents, acked, strict=True))
    backlog_end = sum(a.state.depth for a in fleet.agents)
    connected = fleet.connected()
    deadline = time.monotonic() + grace
    waiting = any(t.unacked_lags(time.time()) for t in timings)
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        waiting = any(t.unacked_lags(time.time()) for t in timings)
    unacked = [lag for t in timings for lag in t.unacked_lags(time.time())]
    return {
        "devices": len(fleet.agents),
        "connected_at_end": connected,
        "window_s": wall,
        "taken": taken_n,
        "acked": acked_n,
        "backlog_start": backlog_start,
        "backlog_end": backlog_end,
        "stations_acked": sum(1 for t in timings if not t.unacked_lags(time.time())),
        "unacked": len(unacked),
        # The unacked count at what they waited so far: a lower bound, never left out.
        "lags": (lags + array("d", unacked)).tobytes(),
        "loop_lag_p99_ms": p99(late) * 1000,
    }


async def _loop_lag(late: list[float]) -> None:
    """How late each TICK_S timer fires: the event loop's own queue, seen from inside."""
    while True:
        due = time.monotonic() + TICK_S
        await asyncio.sleep(TICK_S)
        late.append(max(0.0, time.monotonic() - due))
