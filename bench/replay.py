"""Replay benchmark: a station's live latency idle, then while it replays a deep backlog.

One station (its own process, as real stations are) connects and samples live; its live
samples' latency, sampled → committed on the server, is measured idle: half of IDLE samples
after a WARMUP_S, half once the replay is over (so a load that drifts during the run weighs
on both figures alike). Between them the station goes offline, POINTS are buffered into its
outbox as an hour offline would have left them, and it reconnects: the whole replay
(connect → the server's ack covers the backlog) goes through Mosquitto, the server's ingest
and PostgreSQL while the station keeps sampling live, and every live sample taken during it
counts (no warm-up: the same process and server have been running since the idle phase).
Next to it, in the same run: a bare SELECT of the same outbox and a bare COPY of the same
points. The CPU each part used during the replay (station, broker, server, the database's
backends) is counted too: on a shared machine, latencies swing with the neighbours' load,
core-seconds per point much less.

    python -m bench.replay [--points 1000000 --channels 5 --live-hz 100 --idle-samples 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import asyncpg

from bench.stack import (
    DEFAULT_DATABASE,
    Stack,
    database_of_its_own,
    raw_copy_rate,
    run_as_the_server,
    running_stack,
)
from core.mqtt.endpoint import Endpoint
from core.protocol.signing import VerifyingKey
from core.protocol.telemetry import Batch, Sample, Value
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import Outbox
from webui.backbone.server import Backbone

PASSWORD = "bench-station-secret"
DEVICE = "bench-replay"
# A fresh station process and the server's first statements (pool connections, the staging
# table) take a few hundred ms in the first second: startup, not the steady state measured.
WARMUP_S = 2.0
SETTLE_S = 0.5  # after a phase, for its last live samples to be committed
OFFLINE_S = 3600  # the backlog's samples spread over the hour before the reconnect
# Samples an outbox transaction takes while the backlog is buffered: a few ms each, so the
# sampler, which waits for the same outbox connection, keeps its schedule.
FILL_SAMPLES = 1_000


class Channels:
    """A source of ``count`` channels: integers and two-decimal values, alternating."""

    def __init__(self, count: int) -> None:
        self.count, self.n = count, 0

    def read(self) -> dict[str, Value]:
        """The next sample."""
        self.n += 1
        return {
            f"ch{c}": self.n + c if c % 2 else Decimal(self.n % 10_000) / 100
            for c in range(self.count)
        }


def _offline(samples: int, channels: int, end_ms: int) -> list[tuple[int, dict[str, Value]]]:
    """What ``samples`` taken offline over the OFFLINE_S before ``end_ms`` look like."""
    source, step = Channels(channels), OFFLINE_S * 1000 / samples
    return [(end_ms - int((samples - n) * step), source.read()) for n in range(samples)]


def _baseline(samples: int, channels: int) -> Batch:
    """The backlog's points as one batch of a stream of its own (the raw COPY's input)."""
    backlog = _offline(samples, channels, int(time.time() * 1000))
    stored = tuple(Sample(n + 1, ts, values) for n, (ts, values) in enumerate(backlog))
    return Batch(DEVICE, "baseline", "replay", stored)


def _raw_read_rate(samples: int, channels: int, workdir: Path) -> float:
    """Points a second a bare SELECT reads (and JSON-decodes) from an outbox of the backlog."""
    path = workdir / "raw-read.outbox.db"
    outbox, backlog = Outbox(path), _offline(samples, channels, int(time.time() * 1000))
    for low in range(0, samples, FILL_SAMPLES):
        outbox.append(backlog[low : low + FILL_SAMPLES])
    outbox.close()
    db = sqlite3.connect(path)
    start, rows = time.perf_counter(), 0
    for _seq, _ts, vals in db.execute("SELECT seq, ts, vals FROM outbox ORDER BY seq"):
        json.loads(vals)
        rows += 1
    elapsed = time.perf_counter() - start
    db.close()
    return rows * channels / elapsed


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) process ``pid`` has used so far (Linux's /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a database backend that has ended since
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cpu(stack: Stack, station_s: float) -> dict[str, float]:
    """CPU seconds used so far: the station (as it reported), this process (the server),
    the broker, and each database backend of the bench's database (by pid)."""
    broker = int((stack.workdir / "broker" / "mosquitto.pid").read_text())
    pg = await asyncpg.connect(stack.url)
    try:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        backends = [row["pid"] for row in await pg.fetch(query)]
    finally:
        await pg.close()
    return {
        "station": station_s,
        "server": time.process_time(),
        "broker": _cpu_s(broker),
        **{f"pg-{pid}": _cpu_s(pid) for pid in backends},
    }


def _used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each part used between two ``_cpu`` readings (backends summed)."""
    used = {key: after[key] - before.get(key, 0.0) for key in after}
    return {
        "station": used.pop("station"),
        "broker": used.pop("broker"),
        "server": used.pop("server"),
        "postgres": sum(used.values()),
    }


async def _go_offline_and_buffer(agent: Agent, samples: int, channels: int) -> None:
    """Disconnect, buffer ``samples`` into the outbox as if sampled offline; sampling goes on
    on schedule meanwhile (the backlog is made in a thread and written in small transactions),
    so no catch-up burst of live samples lands on the reconnect."""
    await agent.supervisor.stop()
    now_ms = int(time.time() * 1000)
    backlog = await asyncio.to_thread(_offline, samples, channels, now_ms)
    station = agent.station
    for low in range(0, samples, FILL_SAMPLES):
        async with station.io:
            await asyncio.to_thread(station.outbox.append, backlog[low : low + FILL_SAMPLES])
    await asyncio.sleep(SETTLE_S)


def _station(
    port: int,
    data_dir: Path,
    hz: float,
    channels: int,
    pacing: tuple[int, int],
    server_key: bytes,
    orders: multiprocessing.Queue,
    events: multiprocessing.Queue,
) -> None:
    """The station process: connect, report; on the order, buffer offline, reconnect, report
    the reconnect and when the server's ack covers the backlog."""

    async def run() -> None:
        endpoint = Endpoint("127.0.0.1", port, username=DEVICE, password=PASSWORD)
        batch, ahead = pacing
        config = AgentConfig(
            DEVICE,
            endpoint,
            data_dir,
            interval_s=1 / hz,
            heartbeat_s=60,
            replay_batch=batch,
            replay_ahead=ahead,
            server_keys=(VerifyingKey.from_pem(server_key),),  # it trusts the server's sync
        )
        agent = Agent(config, [Channels(channels)])
        await agent.start()
        await agent.supervisor.wait_connected()
        events.put(("connected", time.time(), time.process_time()))
        samples = await asyncio.to_thread(orders.get)
        await _go_offline_and_buffer(agent, samples, channels)
        await agent.supervisor.start()
        await agent.supervisor.wait_connected()
        events.put(("reconnected", time.time(), time.process_time()))
        backlog = agent.outbox.next_seq - 1  # the replay's last seq, or a live one just past it
        while agent.state.acked_seq < backlog:  # noqa: ASYNC110 (a bench, polling is fine)
            await asyncio.sleep(0.01)
        events.put(("acked", time.time(), time.process_time()))
        await asyncio.sleep(float("inf"))

    asyncio.run(run())


class LiveProbe:
    """Collects sampled → committed latencies (ms) of the station's live samples."""

    def __init__(self, backbone: Backbone, *, since: float) -> None:
        self.since_ms = since * 1000  # samples taken before this wall time are not counted
        self.until_ms = float("inf")  # nor those taken after this one, once it is set
        self.latencies: list[float] = []
        self._remove = backbone.ingest.commits.add(self._committed)

    def _committed(self, batches: list[Batch]) -> None:
        now = time.time() * 1000
        for batch in batches:
            if batch.device_id == DEVICE and batch.origin == "live":
                self.latencies.extend(
                    now - sample.ts
                    for sample in batch.samples
                    if self.since_ms <= sample.ts <= self.until_ms
                )

    async def close(self, *, until: float) -> list[float]:
        """Count samples taken up to ``until``; once they are committed, the latencies."""
        self.until_ms = until * 1000
        await asyncio.sleep(max(0.0, until + SETTLE_S - time.time()))
        self._remove()
        return self.latencies


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Idle latency, then the replay with live samples running, then the bare baselines."""
    samples = args.points // args.channels
    workdir = Path(tempfile.mkdtemp(prefix="pp-replay-"))
    raw = _raw_read_rate(samples, args.channels, workdir)
    context = multiprocessing.get_context("spawn")
    pacing = (args.replay_batch, args.replay_ahead)
    async with (
        database_of_its_own(args.database_url) as url,
        running_stack(url, {DEVICE: PASSWORD}) as stack,
    ):
        gc.collect()  # as webui.app does once the server has started
        gc.freeze()
        orders: multiprocessing.Queue[int] = context.Queue()
        events: multiprocessing.Queue[tuple[str, float, float]] = context.Queue()

        async def event(kind: str, within: float) -> tuple[float, float]:
            """When the station reported ``kind``, and the CPU seconds it had used by then."""
            what, at, cpu = await asyncio.to_thread(events.get, True, within)
            assert what == kind, f"the station reported {what}, not {kind}"
            return at, cpu

        station = context.Process(
            target=_station,
            args=(
                stack.port,
                workdir,
                args.live_hz,
                args.channels,
                pacing,
                stack.backbone.signing_key.public_key().to_pem(),
                orders,
                events,
            ),
        )
        station.start()
        try:
            idle_s = args.idle_samples / args.live_hz / 2  # half before the replay, half after
            connected, _ = await event("connected", 60)
            probe = LiveProbe(stack.backbone, since=connected + WARMUP_S)
            idle_latency = await probe.close(until=connected + WARMUP_S + idle_s)
            orders.put(samples)
            reconnected, station_cpu = await event("reconnected", 300)
            before = await _cpu(stack, station_cpu)
            probe = LiveProbe(stack.backbone, since=reconnected)
            acked, station_cpu = await event("acked", 900)
            cpu = _used(before, await _cpu(stack, station_cpu))
            replay_latency = await probe.close(until=acked)
            probe = LiveProbe(stack.backbone, since=acked + SETTLE_S)
            idle_latency += await probe.close(until=acked + SETTLE_S + idle_s)
        finally:
            station.terminate()
        await stack.backbone.ingest.drain()
        copy = await raw_copy_rate(url, [_baseline(samples, args.channels)])
    replay = samples * args.channels / (acked - reconnected)
    idle_p99, replay_p99 = _p99(idle_latency), _p99(replay_latency)
    return {
        "replay_points_per_s": replay,
        "idle_live_p99_ms": idle_p99,
        "replay_live_p99_ms": replay_p99,
        "live_p99_ratio": replay_p99 / idle_p99,
        "raw_copy_points_per_s": copy,
        "replay_to_raw_copy": replay / copy,
        "raw_sqlite_read_points_per_s": raw,
        "replay_seconds": acked - reconnected,
        "idle_live_p50_ms": _p50(idle_latency),
        "live_samples_idle": float(len(idle_latency)),
        "replay_live_p50_ms": _p50(replay_latency),
        "live_samples_during_replay": float(len(replay_latency)),
        **{f"{part}_cpu_s": seconds for part, seconds in cpu.items()},
        "replay_cpu_cores": sum(cpu.values()) / (acked - reconnected),
    }


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="buffered offline")
    parser.add_argument("--channels", type=int, default=5, help="per sample")
    parser.add_argument(
        "--live-hz", type=float, default=100, help="live samples a second (p99 needs hundreds)"
    )
    parser.add_argument(
        "--idle-samples", type=int, default=1000, help="idle, half before the replay, half after"
    )
    parser.add_argument(
        "--replay-batch",
        type=int,
        default=AgentConfig.replay_batch,
        help="samples a replay message (the station's setting)",
    )
    parser.add_argument(
        "--replay-ahead",
        type=int,
        default=AgentConfig.replay_ahead,
        help="samples replayed past the server's ack at most (the station's setting)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    figures = run_as_the_server(run(args))
    print(f"replay: {args.points:,} points ({args.channels} channels a sample) buffered offline")
    print(
        f"  end-to-end replay  {figures['replay_points_per_s']:>12,.0f} points/s "
        f"({figures['replay_seconds']:.1f} s)"
    )
    print(f"  raw COPY           {figures['raw_copy_points_per_s']:>12,.0f} points/s")
    print(f"  replay / raw COPY  {figures['replay_to_raw_copy']:>12.2f}")
    print(f"  raw SQLite read    {figures['raw_sqlite_read_points_per_s']:>12,.0f} points/s")
    print(
        f"  live p50/p99 idle          {figures['idle_live_p50_ms']:.1f} / "
        f"{figures['idle_live_p99_ms']:.1f} ms (sampled → committed, "
        f"{figures['live_samples_idle']:.0f} samples)"
    )
    print(
        f"  live p50/p99 during replay {figures['replay_live_p50_ms']:.1f} / "
        f"{figures['replay_live_p99_ms']:.1f} ms ({figures['live_samples_during_replay']:.0f}"
        f" samples); p99 ratio {figures['live_p99_ratio']:.2f}"
    )
    parts = ("station", "broker", "server", "postgres")
    print(
        "  CPU during the replay  "
        + ", ".join(f"{part} {figures[f'{part}_cpu_s']:.1f} s" for part in parts)
        + f" ({figures['replay_cpu_cores']:.2f} cores)"
    )
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
