"""The sync bench's side of its station processes, its bare baseline, and the figures.

``Fleet`` splits the stations over processes (``bench.sync_stations.process``), sends each
command to all of them and gathers their answers. ``baseline`` times bare messages to the
same stations. A ``Round`` is one change: when its request left, when each station applied
it, and the server's CPU meanwhile.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from bench import sync_stations
from bench.command_stations import Helper, p50, p99
from core.protocol import topics
from core.settings import Settings

Answer = tuple[Any, ...]
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as core.mqtt.supervisor's client
WINDOW = Settings().mqtt_inflight_window  # the server's link keeps this many QoS 1 in flight
PAUSE_S = 0.25  # between the baseline's rounds: the broker's queues empty


class Fleet:
    """The station processes, asked together."""

    def __init__(
        self,
        port: int,
        credentials: dict[str, str],
        key_pem: bytes,
        template: Path,
        processes: int,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        devices = sorted(credentials)
        self._queues: list[tuple[Any, Any]] = []
        self.helpers: list[Helper] = []
        for index in range(processes):
            part = {d: credentials[d] for d in devices[index::processes]}
            commands, results = context.Queue(), context.Queue()
            self._queues.append((commands, results))
            self.helpers.append(
                Helper(
                    sync_stations.process,
                    port,
                    part,
                    key_pem,
                    str(template),
                    commands,
                    results,
                )
            )

    async def wait_ready(self) -> None:
        """Until every process has built its stations."""
        await asyncio.gather(*(helper.wait_ready() for helper in self.helpers))

    async def ask(self, command: Answer, within_s: float = 120.0) -> list[Answer]:
        """Send ``command`` to every process; their first answers."""
        for commands, _ in self._queues:
            commands.put(command)
        return await self.collect(within_s)

    async def collect(self, within_s: float) -> list[Answer]:
        """The next answer of every process (queue.Empty if one stays silent ``within_s``)."""
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(results.get, True, within_s) for _, results in self._queues)
            )
        )

    def stop(self) -> None:
        """Stop every process (each says goodbye on the broker for its stations)."""
        for helper in self.helpers:
            helper.stop_event.set()
        for helper in self.helpers:
            helper.stop()


async def baseline(
    port: int,
    account: tuple[str, str],
    fleet: Fleet,
    devices: list[str],
    size: int,
    count: int,
    within_s: float = 20.0,
) -> list[dict[str, float]]:
    """``count`` times: a ``size``-byte QoS 1 message to every station at once, each timed.

    Published as the server's link publishes: under its account, ``WINDOW`` in flight.
    """
    head = sync_stations.RAW_PREFIX + b',"pad":"'
    payload = head + b"x" * max(0, size - len(head) - 2) + b'"}'  # JSON, ``size`` bytes
    received: list[dict[str, float]] = []
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        username=account[0],
        password=account[1],
        identifier=account[0],
        socket_options=NODELAY,
        max_inflight_messages=WINDOW,
    ) as client:
        client.pending_calls_threshold = WINDOW  # as the server's link: no warning within it
        window = asyncio.Semaphore(WINDOW)

        async def publish(device_id: str) -> None:
            async with window:
                await client.publish(topics.sync_down(device_id), payload, qos=1)

        for _ in range(count):
            await fleet.ask(("raw", within_s))
            start = time.monotonic()
            await asyncio.gather(*(publish(d) for d in devices))
            answers = await fleet.collect(within_s + 30)
            times = {device: t for answer in answers for device, t in answer[1].items()}
            received.append({device: (t - start) * 1000 for device, t in times.items()})
            await asyncio.sleep(PAUSE_S)
    return received


@dataclass(frozen=True)
class Round:
    """One change: sent at ``start``; each station's time (monotonic) of applying it."""

    start: float
    seen: dict[str, float]
    patch_ms: float  # the PATCH's own round trip
    cpu_s: float  # the server's CPU seconds from the request to the last answer
    window_s: float  # how long that was
    page_bytes: int  # the signed page that carried the change
    shown: int  # replicas whose effective view showed the new name afterwards

    @property
    def latencies_ms(self) -> list[float]:
        """Request sent → applied, per station that applied it."""
        return [(t - self.start) * 1000 for t in self.seen.values()]

    def describe(self) -> str:
        """A line for the progress output."""
        ms = self.latencies_ms or [float("nan")]
        return (
            f"{len(self.seen)} applied, first {min(ms):.0f} ms, p50 {p50(ms):.0f} ms, "
            f"last {max(ms):.0f} ms; server CPU {self.cpu_s * 1000:.0f} ms"
        )


def figures_of(
    rounds: list[Round], raw: list[dict[str, float]], idle: float, stations: int
) -> dict[str, Any]:
    """The JSON line's figures: latencies, counts, CPU, and the baseline with ratios."""
    ms = [value for r in rounds for value in r.latencies_ms]
    raw_ms = [value for times in raw for value in times.values()]
    expected = stations * len(rounds)
    figures: dict[str, Any] = {
        "p50_ms": p50(ms),
        "p99_ms": p99(ms),
        "max_ms": max(ms, default=float("nan")),
        "first_p50_ms": p50([min(r.latencies_ms) for r in rounds if r.seen]),
        "all_applied_p50_ms": p50([max(r.latencies_ms) for r in rounds if r.seen]),
        "patch_p50_ms": p50([r.patch_ms for r in rounds]),
        "expected": expected,
        "applied": len(ms),
        "shown": sum(r.shown for r in rounds),
        "page_bytes": max(r.page_bytes for r in rounds),
        "server_cpu_ms_per_change": statistics.fmean(r.cpu_s for r in rounds) * 1000,
        "server_cpu_above_idle_ms_per_change": statistics.fmean(
            r.cpu_s - idle * r.window_s for r in rounds
        )
        * 1000,
        "server_idle_cpu": idle,
        "raw_p50_ms": p50(raw_ms),
        "raw_p99_ms": p99(raw_ms),
        "raw_max_ms": max(raw_ms, default=float("nan")),
        "raw_all_received_p50_ms": p50([max(t.values()) for t in raw if t]),
        "raw_received": len(raw_ms),
    }
    figures["p50_vs_raw"] = figures["p50_ms"] / figures["raw_p50_ms"]
    figures["p99_vs_raw"] = figures["p99_ms"] / figures["raw_p99_ms"]
    return figures
