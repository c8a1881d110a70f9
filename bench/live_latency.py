"""Publish → on screen: a device publishes a counter while a real browser page watches it.

As device bench-1 the bench publishes live samples (QoS 0, one a message, as the agent
sends them) with a channel ``probe`` counting up, noting each publish time on the wall
clock; the page notes when each value is painted, on the same clock. The server's ack,
sent after the commit, splits the way in two: publish → stored, stored → on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from dataclasses import dataclass

import aiomqtt

from bench.browser import Browser
from core.protocol import topics
from core.protocol.messages import Ack
from core.protocol.telemetry import Sample, encode_batch

PROBE_DEVICE, PROBE = "bench-1", "probe"
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as core.mqtt.supervisor's client
CAUGHT_UP_S = 5.0  # how long the last sample may take to show before the run gives up


@dataclass(frozen=True)
class Probe:
    """When each probe sample was published and acked (ms, wall clock), and shown."""

    published: dict[int, float]
    acked: dict[int, float]
    shown: list[tuple[int, float]]  # (value on screen, when), in screen order


async def probe_latency(
    broker_port: int, browser: Browser, password: str, samples: int, rate: float
) -> Probe:
    """Publish ``samples`` probe values at ``rate`` Hz as bench-1 while the page watches."""
    published: dict[int, float] = {}
    acked: dict[int, float] = {}
    async with aiomqtt.Client(
        "127.0.0.1",
        broker_port,
        username=PROBE_DEVICE,
        password=password,
        socket_options=NODELAY,
    ) as client:
        await client.subscribe(topics.telemetry_ack(PROBE_DEVICE), qos=1)

        async def read_acks() -> None:
            covered = 0
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                ack = Ack.parse(message.payload, PROBE_DEVICE)
                if isinstance(ack, Ack):
                    now = time.time() * 1000
                    for seq in range(covered + 1, ack.acked_seq + 1):
                        acked[seq - 1] = now  # seq n + 1 carries probe value n
                    covered = max(covered, ack.acked_seq)

        async def publish(n: int) -> None:
            now = time.time()
            sample = Sample(n + 1, int(now * 1000), {PROBE: n})
            payload = encode_batch(
                device_id=PROBE_DEVICE, stream="bench", origin="live", samples=[sample]
            )
            published[n] = now * 1000
            await client.publish(topics.telemetry(PROBE_DEVICE), payload, qos=0)

        acks = asyncio.get_running_loop().create_task(read_acks())
        await publish(0)  # the value element exists only once the channel has a value
        await asyncio.to_thread(browser.watch, PROBE)
        start = time.perf_counter()
        for n in range(1, samples + 1):
            delay = start + (n - 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await publish(n)
        shown = await asyncio.to_thread(browser.watched_until, samples, CAUGHT_UP_S)
        acks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acks
    del published[0]
    return Probe(published, acked, shown)


def latency_figures(probe: Probe) -> dict[str, float]:
    """Publish → on screen per sample, and publish → acked (stored) for comparison.

    A sample is on screen once the page shows it or a later one: at 4 Hz ticks two samples
    may land in one tick, and counting only those shown by themselves would drop exactly
    the ones that waited longest. How many were shown by themselves is reported too.
    """
    on_screen: dict[int, float] = {}
    alone: set[int] = set()
    for value, at in probe.shown:
        alone.add(value)
        for n in range(1, value + 1):
            on_screen.setdefault(n, at)
    visible = [on_screen[n] - t for n, t in probe.published.items() if n in on_screen]
    stored = [probe.acked[n] - t for n, t in probe.published.items() if n in probe.acked]
    alone_only = [on_screen[n] - probe.published[n] for n in alone if n in probe.published]
    return {
        "p50_ms": statistics.median(visible),
        "p99_ms": _p99(visible),
        "max_ms": max(visible),
        "published": float(len(probe.published)),
        "visible": float(len(visible)),
        "seen": float(len(alone & probe.published.keys())),
        "seen_p99_ms": _p99(alone_only),
        "stored_p50_ms": statistics.median(stored) if stored else float("nan"),
        "stored_p99_ms": _p99(stored) if stored else float("nan"),
    }


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    # Inclusive: the p99 of a few hundred samples stays within what was measured.
    return statistics.quantiles(values, n=100, method="inclusive")[98]
