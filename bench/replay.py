"""Replay benchmark: a station buffers POINTS offline, reconnects, and replays them.

End to end (station process → Mosquitto → server ingest → PostgreSQL) replay throughput,
next to the rates a bare SELECT reads the same outbox and a bare COPY stores the same points
in the same run; and the latency of the station's live samples (sampled → committed on the
server) while the replay runs, next to the same station idle. Each phase drops the samples
of its first WARMUP_S after the connect.

    python -m bench.replay [--points 1000000 --channels 5 --live-hz 10 --idle-samples 150]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench.stack import DEFAULT_DATABASE, database_of_its_own, raw_copy_rate, running_stack
from core.mqtt.endpoint import Endpoint
from core.protocol.telemetry import Batch, Sample, Value
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import Outbox
from webui.backbone.server import Backbone

PASSWORD = "bench-station-secret"
IDLE, REPLAYING = "bench-idle", "bench-replay"
BASE_TS = 1_764_170_000_000
# A fresh station process and the server's first statements (pool connections, the staging
# table) take a few hundred ms in the first second: startup, not the steady state measured.
WARMUP_S = 2.0
SETTLE_S = 0.5  # after the idle phase, for its last samples to be committed


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


def _backlog(samples: int, channels: int) -> Batch:
    """The points ``_fill`` buffers, as one batch (for the raw COPY baseline)."""
    source = Channels(channels)
    buffered = (Sample(n + 1, BASE_TS + n, source.read()) for n in range(samples))
    return Batch(REPLAYING, "baseline", "replay", tuple(buffered))


def _fill(path: Path, samples: int, channels: int) -> None:
    outbox, source = Outbox(path), Channels(channels)
    for low in range(0, samples, 10_000):
        outbox.append(
            [(BASE_TS + n, source.read()) for n in range(low, min(samples, low + 10_000))]
        )
    outbox.close()


def _raw_read_rate(path: Path, channels: int) -> float:
    """Points a second a bare SELECT reads (and JSON-decodes) from the outbox file."""
    db = sqlite3.connect(path)
    start, rows = time.perf_counter(), 0
    for _seq, _ts, vals in db.execute("SELECT seq, ts, vals FROM outbox ORDER BY seq"):
        json.loads(vals)
        rows += 1
    elapsed = time.perf_counter() - start
    db.close()
    return rows * channels / elapsed


def _station(
    port: int,
    device: str,
    data_dir: Path,
    hz: float,
    channels: int,
    events: multiprocessing.Queue,
    pacing: tuple[int, int],
) -> None:
    """A station process: connect, report when connected and when the backlog is acked."""

    async def run() -> None:
        endpoint = Endpoint("127.0.0.1", port, username=device, password=PASSWORD)
        batch, ahead = pacing
        config = AgentConfig(
            device,
            endpoint,
            data_dir,
            interval_s=1 / hz,
            heartbeat_s=60,
            replay_batch=batch,
            replay_ahead=ahead,
        )
        agent = Agent(config, [Channels(channels)])
        backlog = agent.outbox.next_seq - 1
        await agent.start()
        await agent.supervisor.wait_connected()
        events.put((device, "connected", time.time()))
        while agent.state.acked_seq < backlog:  # noqa: ASYNC110 (a bench, polling is fine)
            await asyncio.sleep(0.01)
        events.put((device, "acked", time.time()))
        await asyncio.sleep(float("inf"))

    asyncio.run(run())


class LiveProbe:
    """Collects sampled → committed latencies (ms) of one station's live samples."""

    def __init__(self, backbone: Backbone, device: str, *, since: float) -> None:
        self.device = device
        self.since_ms = since * 1000  # samples taken before this wall time are not counted
        self.latencies: list[float] = []
        self._remove = backbone.ingest.commits.add(self._committed)

    def _committed(self, batches: list[Batch]) -> None:
        now = time.time() * 1000
        for batch in batches:
            if batch.device_id == self.device and batch.origin == "live":
                self.latencies.extend(
                    now - sample.ts for sample in batch.samples if sample.ts >= self.since_ms
                )

    def close(self) -> list[float]:
        """Stop collecting; the latencies so far."""
        self._remove()
        return self.latencies


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Idle latency, the replay with live samples running, then a raw COPY; the figures."""
    samples = args.points // args.channels
    workdir = Path(tempfile.mkdtemp(prefix="pp-replay-"))
    _fill(workdir / f"{REPLAYING}.outbox.db", samples, args.channels)
    raw = _raw_read_rate(workdir / f"{REPLAYING}.outbox.db", args.channels)
    context = multiprocessing.get_context("spawn")
    pacing = (args.replay_batch, args.replay_ahead)
    async with (
        database_of_its_own(args.database_url) as url,
        running_stack(url, {IDLE: PASSWORD, REPLAYING: PASSWORD}) as stack,
    ):
        events: multiprocessing.Queue[tuple[str, str, float]] = context.Queue()

        async def event(device: str, kind: str, within: float) -> float:
            """When ``device`` reported ``kind`` (other reports are skipped)."""
            while True:
                who, what, at = await asyncio.to_thread(events.get, True, within)
                if (who, what) == (device, kind):
                    return at

        def station(device: str) -> multiprocessing.process.BaseProcess:
            process = context.Process(
                target=_station,
                args=(stack.port, device, workdir, args.live_hz, args.channels, events, pacing),
            )
            process.start()
            return process

        idle = station(IDLE)
        connected = await event(IDLE, "connected", 60)
        probe = LiveProbe(stack.backbone, IDLE, since=connected + WARMUP_S)
        until = connected + WARMUP_S + args.idle_samples / args.live_hz + SETTLE_S
        await asyncio.sleep(until - time.time())
        idle_latency = probe.close()
        idle.terminate()

        replaying = station(REPLAYING)
        connected = await event(REPLAYING, "connected", 60)
        probe = LiveProbe(stack.backbone, REPLAYING, since=connected + WARMUP_S)
        acked = await event(REPLAYING, "acked", 900)
        replay_latency = probe.close()
        replaying.terminate()
        await stack.backbone.ingest.drain()
        copy = await raw_copy_rate(url, [_backlog(samples, args.channels)])
    replay = samples * args.channels / (acked - connected)
    return {
        "replay_points_per_s": replay,
        "raw_copy_points_per_s": copy,
        "replay_to_raw_copy": replay / copy,
        "raw_sqlite_read_points_per_s": raw,
        "replay_seconds": acked - connected,
        "idle_live_p50_ms": _p50(idle_latency),
        "idle_live_p99_ms": _p99(idle_latency),
        "live_samples_idle": float(len(idle_latency)),
        "replay_live_p50_ms": _p50(replay_latency),
        "replay_live_p99_ms": _p99(replay_latency),
        "live_samples_during_replay": float(len(replay_latency)),
    }


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="buffered offline")
    parser.add_argument("--channels", type=int, default=5, help="per sample")
    parser.add_argument("--live-hz", type=float, default=10, help="live samples a second")
    parser.add_argument(
        "--idle-samples", type=int, default=150, help="idle phase, after the warm-up"
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
    figures = asyncio.run(run(args))
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
        f"{figures['idle_live_p99_ms']:.1f} ms (sampled → committed)"
    )
    print(
        f"  live p50/p99 during replay {figures['replay_live_p50_ms']:.1f} / "
        f"{figures['replay_live_p99_ms']:.1f} ms"
    )
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
