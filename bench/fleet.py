"""Fleet benchmark: how many simulated stations one process (one core at most) holds.

``precisionpulse simulate`` runs many agents in one event loop, each with its own outbox,
stream and broker connection. This runs N of them at a rate against Mosquitto and the
server's ingest on PostgreSQL, and measures the fleet process's CPU (share of one core),
the samples it took against the schedule, and how far the server's acks lag. Next to it,
in the same run: N bare aiomqtt clients publishing live payloads of the same size at the
same rate, with no outbox, acks or heartbeats — the raw cost of the MQTT traffic alone.

    python -m bench.fleet [--stations 300 --rate 1 --seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt

from bench.stack import DEFAULT_DATABASE, database_of_its_own, running_stack
from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.telemetry import Sample, encode_batch
from desktop.agent.fleet import Fleet, new_credentials, template
from desktop.agent.sources import Simulated

Queue = Any  # multiprocessing.Queue is not subscriptable at runtime


def _fleet(port: int, credentials: dict[str, str], rate: float, seconds: float, out: Queue) -> None:
    """The fleet process: start every station, then measure a steady window."""

    async def run() -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="pp-fleet-"))
        fleet = Fleet(credentials, template(Endpoint("127.0.0.1", port), data_dir, rate))
        await fleet.start()
        async with asyncio.timeout(60):
            while fleet.connected() < len(fleet.agents):  # noqa: ASYNC110 (a bench)
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # past the start-up burst
        seqs = [agent.state.last_seq for agent in fleet.agents]
        before = [agent.state.depth for agent in fleet.agents]
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        taken = sum(a.state.last_seq - s for a, s in zip(fleet.agents, seqs, strict=True))
        depth = [agent.state.depth for agent in fleet.agents]
        await fleet.stop()
        out.put(
            {
                "cpu_share": cpu / wall,
                "samples_per_s": taken / wall,
                "max_unacked": max(depth),
                "mean_unacked": sum(depth) / len(depth),
                "mean_unacked_before": sum(before) / len(before),
            }
        )

    asyncio.run(run())


def _raw(port: int, credentials: dict[str, str], rate: float, seconds: float, out: Queue) -> None:
    """The baseline process: bare clients publishing a live-sized payload at the same rate."""

    logging.getLogger("mqtt").setLevel(logging.ERROR)  # "pending publish calls" when busy
    start, stop = asyncio.Event(), asyncio.Event()

    async def client(device: str, password: str, counts: list[int]) -> None:
        async with aiomqtt.Client("127.0.0.1", port, username=device, password=password) as mqtt:
            source, seq = Simulated(), 0
            await start.wait()
            next_at = time.monotonic()
            while not stop.is_set():
                seq += 1
                sample = Sample(seq, int(time.time() * 1000), source.read())
                payload = encode_batch(
                    device_id=device, stream="raw", origin="live", samples=[sample]
                )
                await mqtt.publish(topics.telemetry(device), payload)
                counts[0] += 1
                next_at += 1 / rate
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def run() -> None:
        counts = [0]
        tasks = [asyncio.create_task(client(d, p, counts)) for d, p in credentials.items()]
        await asyncio.sleep(3)  # connected
        start.set()
        await asyncio.sleep(2)
        sent, cpu, wall = counts[0], time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        out.put({"cpu_share": cpu / wall, "samples_per_s": (counts[0] - sent) / wall})
        stop.set()  # each client leaves its loop and disconnects cleanly
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())


def _in_process(target: Any, *args: Any) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=target, args=(*args, out))
    process.start()
    try:
        result: dict[str, float] = out.get(timeout=600)
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
    return result


async def run(args: argparse.Namespace) -> dict[str, float]:
    """The raw clients, then the fleet, against one stack; returns the figures."""
    credentials = new_credentials("fleet", args.stations)
    async with (
        database_of_its_own(args.database_url) as url,
        running_stack(url, credentials) as stack,
    ):
        common = (stack.port, credentials, args.rate, args.seconds)
        raw = await asyncio.to_thread(_in_process, _raw, *common)
        server_cpu = time.process_time()
        fleet = await asyncio.to_thread(_in_process, _fleet, *common)
        server_cpu = time.process_time() - server_cpu
    return {
        "stations": args.stations,
        "rate_hz": args.rate,
        "fleet_cpu_share_of_a_core": fleet["cpu_share"],
        "raw_clients_cpu_share_of_a_core": raw["cpu_share"],
        "fleet_vs_raw_cpu": fleet["cpu_share"] / raw["cpu_share"],
        "fleet_samples_per_s": fleet["samples_per_s"],
        "raw_samples_per_s": raw["samples_per_s"],
        "scheduled_samples_per_s": args.stations * args.rate,
        "max_unacked_samples": fleet["max_unacked"],
        "mean_unacked_samples": fleet["mean_unacked"],
        "mean_unacked_samples_at_start": fleet["mean_unacked_before"],
        "server_cpu_seconds_during_fleet": server_cpu,
    }


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=300)
    parser.add_argument("--rate", type=float, default=1.0, help="samples a second, each")
    parser.add_argument("--seconds", type=float, default=30, help="measured window")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(f"fleet: {args.stations} stations at {args.rate:g} Hz, {args.seconds:g} s measured")
    print(
        f"  fleet process  {figures['fleet_cpu_share_of_a_core']:6.1%} of a core, "
        f"{figures['fleet_samples_per_s']:,.0f} samples/s "
        f"(scheduled {figures['scheduled_samples_per_s']:,.0f})"
    )
    print(
        f"  raw clients    {figures['raw_clients_cpu_share_of_a_core']:6.1%} of a core, "
        f"{figures['raw_samples_per_s']:,.0f} messages/s"
    )
    print(
        f"  fleet / raw CPU {figures['fleet_vs_raw_cpu']:.2f}; unacked at the end: "
        f"max {figures['max_unacked_samples']:.0f}, mean {figures['mean_unacked_samples']:.1f} "
        f"(mean {figures['mean_unacked_samples_at_start']:.1f} at the start)"
    )
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
