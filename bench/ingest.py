"""Ingest benchmark: publishers → Mosquitto → server ingest → PostgreSQL, next to a raw COPY.

Throughput: DEVICES stations (in a separate process, as real stations are) publish live
batches of SAMPLES samples x CHANNELS channels at QoS 1 as fast as the broker takes them;
the server's ingest stores them with the real table, partitions and indexes. Live, because
that is the server's whole capacity: replayed messages are deliberately held to one
transaction at a time so live keeps its room (bench.replay measures those). Then the same
samples (streams of their own) are COPYed with bare asyncpg into the same table in
transactions of about as many points as ingest's: the baseline. Latency: one-sample live
messages at RATE messages/s; each is timed from publish to the arrival of the ack that
covers it (the ack leaves only after the commit). The server's CPU per point is reported
too: on a shared machine it says more than the rates do.

    python -m bench.ingest [--devices 4 --messages 500 --samples 100 --channels 10 --rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiomqtt

from bench.stack import (
    DEFAULT_DATABASE,
    database_of_its_own,
    raw_copy_rate,
    run_as_the_server,
    running_stack,
)
from core.protocol import topics
from core.protocol.messages import Ack
from core.protocol.telemetry import Batch, Sample, encode_batch, parse_batch
from webui.backbone.server import Backbone

PASSWORD = "bench-device-secret"
# Live samples of a 100 Hz station, from now on: today's partition (made ahead by the server)
# holds them, as it holds any live traffic.
BASE_TS = int(time.time() * 1000)
SAMPLE_MS = 10
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as the supervisor's own client


@dataclass(frozen=True)
class Shape:
    """How much the publishers send."""

    devices: int
    messages: int
    samples: int
    channels: int

    @property
    def points(self) -> int:
        """Channel values in the whole run: one telemetry row each."""
        return self.devices * self.messages * self.samples * self.channels


def _device(n: int) -> str:
    return f"bench-{n:03d}"


def _batches(shape: Shape, device: str, stream: str = "throughput") -> Iterator[bytes]:
    for message in range(shape.messages):
        first = message * shape.samples + 1
        samples = [
            Sample(
                seq,
                BASE_TS + seq * SAMPLE_MS,
                {f"ch{c}": (seq * 7 + c) % 10_000 for c in range(shape.channels)},
            )
            for seq in range(first, first + shape.samples)
        ]
        yield encode_batch(device_id=device, stream=stream, origin="live", samples=samples)


# -- publishers (a child process) ----------------------------------------------------------


def _publish_process(port: int, shape: Shape, started: multiprocessing.Queue) -> None:
    asyncio.run(_publish_all(port, shape, started))


async def _publish_all(port: int, shape: Shape, started: multiprocessing.Queue) -> None:
    payloads = {_device(n): list(_batches(shape, _device(n))) for n in range(shape.devices)}
    started.put(time.time())
    await asyncio.gather(*(_publish_device(port, d, p) for d, p in payloads.items()))


async def _publish_device(port: int, device: str, payloads: list[bytes]) -> None:
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        username=device,
        password=PASSWORD,
        max_inflight_messages=200,
        socket_options=NODELAY,
    ) as client:
        window = asyncio.Semaphore(200)

        async def one(payload: bytes) -> None:
            async with window:
                await client.publish(topics.telemetry(device), payload, qos=1)

        await asyncio.gather(*(one(p) for p in payloads))


def _latency_process(port: int, rate: float, seconds: float, result: multiprocessing.Queue) -> None:
    result.put(asyncio.run(_latency(port, rate, seconds)))


async def _latency(port: int, rate: float, seconds: float) -> list[float]:
    device = _device(0)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    async with aiomqtt.Client(
        "127.0.0.1", port, username=device, password=PASSWORD, socket_options=NODELAY
    ) as client:
        await client.subscribe(topics.telemetry_ack(device), qos=1)
        count = int(rate * seconds)

        async def read_acks() -> None:
            covered = 0
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                ack = Ack.parse(message.payload, device)
                if not isinstance(ack, Ack) or ack.stream != "latency":
                    continue
                now = time.perf_counter()
                for seq in range(covered + 1, ack.acked_seq + 1):
                    latencies.append(now - sent.pop(seq))
                covered = max(covered, ack.acked_seq)
                if covered >= count:
                    return

        reader = asyncio.get_running_loop().create_task(read_acks())
        start = time.perf_counter()
        for seq in range(1, count + 1):
            delay = start + (seq - 1) / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # The sample time is the send time: the server's own clock is the same one.
            sample = Sample(seq, int(time.time() * 1000), {"temp": seq % 100, "on": True})
            payload = encode_batch(
                device_id=device, stream="latency", origin="live", samples=[sample]
            )
            sent[seq] = time.perf_counter()
            await client.publish(topics.telemetry(device), payload, qos=0)
        async with asyncio.timeout(30):
            await reader
    return latencies


# -- the server side ---------------------------------------------------------------------


async def _wait_rows(backbone: Backbone, target: int) -> float:
    """The wall time at which ingest had committed ``target`` rows (2 ms resolution)."""
    # Polling the counter keeps the server code free of bench hooks.
    while backbone.metrics.rows_stored._value.get() < target:  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    return time.time()


async def _baseline_copy(url: str, shape: Shape) -> float:
    """Rows per second of a bare asyncpg COPY of the same rows into a same-indexed table."""
    batches = []
    for n in range(shape.devices):
        for payload in _batches(shape, _device(n), stream="baseline"):
            batch = parse_batch(payload, _device(n))
            assert isinstance(batch, Batch), batch
            batches.append(batch)
    return await raw_copy_rate(url, batches)


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Both phases on a fresh database and broker; returns the figures."""
    shape = Shape(args.devices, args.messages, args.samples, args.channels)
    async with database_of_its_own(args.database_url) as url:
        stations = {_device(n): PASSWORD for n in range(shape.devices)}
        async with running_stack(url, stations) as stack:
            figures = await _phases(args, shape, stack.port, stack.backbone)
        figures["baseline_copy_points_per_s"] = await _baseline_copy(url, shape)
    figures["ratio"] = figures["points_per_s"] / figures["baseline_copy_points_per_s"]
    return figures


async def _phases(
    args: argparse.Namespace, shape: Shape, port: int, backbone: Backbone
) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    started: multiprocessing.Queue[float] = context.Queue()
    publisher = context.Process(target=_publish_process, args=(port, shape, started))
    publisher.start()
    t0 = await asyncio.to_thread(started.get, True, 60)
    cpu0 = time.process_time()  # this process is the server (the publishers are not)
    async with asyncio.timeout(300):
        t1 = await _wait_rows(backbone, shape.points)
    cpu = time.process_time() - cpu0
    await asyncio.to_thread(publisher.join, 30)
    throughput = shape.points / (t1 - t0)

    result: multiprocessing.Queue[list[float]] = context.Queue()
    prober = context.Process(target=_latency_process, args=(port, args.rate, args.seconds, result))
    prober.start()
    cpu0 = time.process_time()
    latencies = await asyncio.to_thread(result.get, True, args.seconds + 60)
    latency_cpu = time.process_time() - cpu0
    await asyncio.to_thread(prober.join, 30)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "points_per_s": throughput,
        # CPU the server process spent per point: what a loaded machine does not change.
        "server_cpu_us_per_point": cpu / shape.points * 1e6,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": cuts[98] * 1000,
        "latency_messages": float(len(latencies)),
        "server_cpu_us_per_message": latency_cpu / len(latencies) * 1e6,
    }


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--messages", type=int, default=500, help="per device")
    parser.add_argument("--samples", type=int, default=100, help="per message")
    parser.add_argument("--channels", type=int, default=10, help="per sample")
    parser.add_argument("--rate", type=float, default=1000, help="latency phase, messages/s")
    parser.add_argument("--seconds", type=float, default=5, help="latency phase length")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="a PostgreSQL server; the bench creates and drops its own database there",
    )
    args = parser.parse_args()
    figures = run_as_the_server(run(args))
    points = args.devices * args.messages * args.samples * args.channels
    print(f"ingest: {points:,} points in {args.devices} streams")
    print(f"  server ingest  {figures['points_per_s']:>12,.0f} points/s")
    print(f"  raw COPY       {figures['baseline_copy_points_per_s']:>12,.0f} points/s")
    print(f"  ratio          {figures['ratio']:>12.2f}")
    print(f"  server CPU     {figures['server_cpu_us_per_point']:>12.2f} µs a point")
    print(
        f"  latency at {args.rate:.0f} msg/s: p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms (publish → ack after commit), "
        f"server CPU {figures['server_cpu_us_per_message']:.0f} µs a message"
    )
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
