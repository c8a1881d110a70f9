"""Fleet benchmark: N real stations, over a few processes, into one server, at rising rates.

What an operator runs: ``precisionpulse serve`` in a process of its own (``bench.
server_process``) on a PostgreSQL database of the bench's own and its own Mosquitto, every
station with an account (a password of its own) there and a device row in the database.
The stations are ``desktop.agent.fleet`` Fleets (what ``precisionpulse simulate`` runs),
split over ``--processes`` processes, each its own event loop (``bench.fleet_stations``);
each station samples ``--channels`` channels at the step's rate into its own SQLite outbox
and sends live over its own connection.

Each rate of ``--rates`` is a step with fresh station processes: connect, ``--warmup`` s,
then ``--seconds`` s measured. Per step: samples taken a second against the schedule,
acked samples and points a second, the ack lag of the window's samples (taking → the
server's ack arriving at the station, see ``bench.fleet_stations``; a sample still unacked
after the grace counts with what it waited), the backlog at the window's start and end,
and each process's CPU (share of one core) and memory (``bench.usage``): every station
process, the server, Mosquitto, and PostgreSQL (the backends of the bench's database; its
other processes apart: on a shared machine they carry other people's work too).

A step is held when the ack lag p99 is within P99_TARGET_MS, samples are taken at
HELD_SHARE of the schedule or more, and the backlog does not grow past what that lag
allows. ``--raw`` adds, after each step, bare aiomqtt clients publishing the same samples
at the same rate from as many processes (``bench.fleet_raw``): the cost of the MQTT traffic
alone, set against the fleet's CPU. It doubles each step's time, so it is off by default.
``--bare`` runs only those clients, timing their acks: the server, broker and database with
the box to themselves but for the stations' traffic, as with stations on machines of their
own (on this box the agents alone take more than a core at 1,000 samples/s).

    python -m bench.fleet [--devices 1000 --processes 4 --rates 1,2,5,10 --seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import fleet_raw, fleet_stations
from bench.cpu import machine_seconds
from bench.fleet_parts import STOP_S, Parts
from bench.fleet_report import (
    P99_TARGET_MS,
    Window,
    bare_figures,
    figures_of,
    line_of,
    rounded,
    summary,
)
from bench.server_metrics import rates, scrape
from bench.server_process import ServerProcess, settings_for
from bench.stack import DEFAULT_DATABASE, database_of_its_own
from bench.usage import Group, named_below, postgres_backends, postgres_others, tree, use
from broker.launcher import embedded_broker
from core.db.engine import Database
from core.db.models import Device
from core.passwords import mosquitto_hash
from desktop.agent.fleet import new_credentials
from webui.backbone.server import server_signing_key

SERVER = ("server", "bench-server-secret")
GRACE_S = 10.0  # after the window, for its last samples' acks; later ones count as waited
READY_S = 240.0  # spawn, import, open 250 outboxes and connect them, on a loaded machine
RAW_WARMUP_S = 3.0  # the bare clients have nothing to settle but their first publishes
WINDOW_LEAD_S = 0.5  # a window starts this long after it is told: every process has heard it


@dataclass(frozen=True)
class Rig:
    """What every step stands on: the broker, the stations' accounts, the running server."""

    port: int
    credentials: dict[str, str]
    key_pem: bytes
    server_url: str
    groups: list[Group]  # the server, the broker, PostgreSQL: read around every window


async def _register(url: str, workdir: Path, credentials: dict[str, str]) -> bytes:
    """Every station's device row; the server's public key (PEM), as stations trust it."""
    settings = settings_for(workdir, url)
    key = server_signing_key(settings.signing_key_file)  # the key the server will load
    database = Database(settings.async_database_url)
    try:
        async with database.session() as session:
            for device_id, password in credentials.items():
                session.add(Device(id=device_id, mqtt_password_hash=mosquitto_hash(password)))
    finally:
        await database.close()
    return key.public_key().to_pem()


async def _window(parts: Parts, rig: Rig, groups: list[Group], seconds: float) -> Window:
    """Tell the processes a window starting now, read every group around it."""
    start = time.time() + WINDOW_LEAD_S
    end = start + seconds
    parts.tell((start, end, GRACE_S))
    await asyncio.sleep(max(0.0, start - time.time()))
    before, machine = [g.read() for g in groups], machine_seconds()
    scraped = await asyncio.to_thread(scrape, rig.server_url)
    await asyncio.sleep(max(0.0, end - time.time()))
    after, machine_after = [g.read() for g in groups], machine_seconds()
    wall = seconds + (time.time() - end)
    server = rates(scraped, await asyncio.to_thread(scrape, rig.server_url), wall)
    uses = {g.name: use(b, a, wall) for g, b, a in zip(groups, before, after, strict=True)}
    busy = (machine_after[0] - machine[0]) / max(1e-9, machine_after[1] - machine[1])
    answers = await parts.answers("figures", GRACE_S + 120)
    await parts.answers("stopped", STOP_S)
    return Window([answer[1] for answer in answers], uses, server, busy)


async def step(rig: Rig, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """One rate: fresh station processes, connected, warmed up, measured, stopped."""
    load = os.getloadavg()[0]
    _progress(f"{rate:g} Hz: starting {len(rig.credentials)} stations (load {load:.2f})")
    parts = Parts(
        fleet_stations.process,
        rig.port,
        rig.credentials,
        args.processes,
        rig.key_pem,
        rate,
        args.channels,
        args.nice,
    )
    try:
        ready = await parts.answers("ready", READY_S)
        _progress(f"{rate:g} Hz: {sum(a[1] for a in ready)} connected; warming up")
        parts.tell((args.warmup, args.warmup_max))
        warm = await parts.answers("warm", args.warmup_max + 60)
        _progress(f"{rate:g} Hz: backlog {sum(a[1] for a in warm)} after the warm-up; measuring")
        fleets = [Group(f"fleet_{n}", partial(tree, pid)) for n, pid in enumerate(parts.pids, 1)]
        window = await _window(parts, rig, fleets + rig.groups, args.seconds)
    finally:
        await asyncio.to_thread(parts.stop)
    figures = figures_of(args, rate, ready, window)
    figures |= {
        "warmup_s": max(a[2] for a in warm),
        "load_avg_1m_at_start": load,
        "machine_busy_share": window.busy,
        **window.server,
    }
    if args.raw:
        figures["raw"] = await _raw(rig, args, rate)
        figures["fleet_vs_raw_cpu"] = figures["cpu"]["fleets"] / figures["raw"]["cpu"]["raws"]
    _progress(f"{rate:g} Hz: {line_of(figures)}")
    return figures


async def _raw(rig: Rig, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """The bare clients at the same rate, measured over a window as long."""
    parts = Parts(fleet_raw.process, rig.port, rig.credentials, args.processes, rate, args.channels)
    try:
        await parts.answers("ready", READY_S)
        await asyncio.sleep(RAW_WARMUP_S)
        raws = [Group(f"raw_{n}", partial(tree, pid)) for n, pid in enumerate(parts.pids, 1)]
        window = await _window(parts, rig, raws + rig.groups, args.seconds)
    finally:
        await asyncio.to_thread(parts.stop)
    return bare_figures(args, rate, window)


async def bare_step(rig: Rig, args: argparse.Namespace, rate: float) -> dict[str, Any]:
    """One rate with bare clients only: the server side's capacity on this box."""
    load = os.getloadavg()[0]
    _progress(f"{rate:g} Hz: {len(rig.credentials)} bare clients (load {load:.2f})")
    figures = await _raw(rig, args, rate) | {"load_avg_1m_at_start": load}
    _progress(f"{rate:g} Hz: {line_of(figures)}")
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the database, broker and server; every step; stop everything, on error too."""
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-fleet-"))
    args.credentials = new_credentials("fleet", args.devices)
    steps: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(database_of_its_own(args.database_url))
        database = url.rsplit("/", 1)[1]
        broker = await stack.enter_async_context(
            embedded_broker(
                workdir / "broker",
                users={SERVER[0]: SERVER[1], **args.credentials},
                prefer="mosquitto",
            )
        )
        if broker.kind != "mosquitto":
            msg = "the fleet bench needs Mosquitto (apt-get install mosquitto)"
            raise RuntimeError(msg)
        _progress(f"registering {args.devices} stations ({workdir})")
        key_pem = await _register(url, workdir, args.credentials)
        server = ServerProcess(
            workdir, settings_for(workdir, url), broker_url=broker.url, account=SERVER
        )
        stack.callback(server.stop)
        await asyncio.to_thread(server.wait_until_linked)
        me = os.getpid()
        groups = [
            Group("server", lambda: tree(server.pid)),
            Group("mosquitto", lambda: named_below(me, "mosquitto")),
            Group("postgres_backends", lambda: postgres_backends(database)),
            Group("postgres_other", lambda: postgres_others(database)),
        ]
        rig = Rig(broker.port, args.credentials, key_pem, server.url, groups)
        for rate in args.rates:
            steps.append(await (bare_step if args.bare else step)(rig, args, rate))
    held = [s["rate_hz"] for s in steps if s["held"]]
    if len(held) == len(steps):
        shutil.rmtree(workdir, ignore_errors=True)
    else:  # what the server said while it did not keep up
        _progress(f"the server's log is kept: {workdir / 'server.log'}")
    return {
        "devices": args.devices,
        "processes": args.processes,
        "station_niceness": args.nice,
        "bare": args.bare,
        "channels": args.channels,
        "warmup_s": args.warmup,
        "seconds": args.seconds,
        "p99_target_ms": P99_TARGET_MS,
        "held_rates_hz": held,
        "highest_rate_held_hz": max(held, default=0),
        "steps": steps,
        "run_s": time.monotonic() - began,
    }


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", "--stations", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4, help="processes the stations share")
    parser.add_argument("--rates", default="1", help="samples a second each, a step per rate")
    parser.add_argument("--channels", type=int, default=10, help="channels a sample")
    parser.add_argument(
        "--warmup", type=float, default=10, help="seconds at least before each window"
    )
    parser.add_argument(
        "--warmup-max",
        type=float,
        default=120,
        help="seconds at most waiting for the start-up's backlog to be acked",
    )
    parser.add_argument("--seconds", type=float, default=30, help="each step's window")
    parser.add_argument("--raw", action="store_true", help="bare clients after each step")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="bare clients only, acks timed: the server side as with stations elsewhere",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of the station processes (10: the server's cores come first)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    try:
        args.rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error("--rates: numbers separated by commas, e.g. 1,2,5,10")
    if args.devices < 1 or args.processes < 1 or args.channels < 1 or min(args.rates) <= 0:
        parser.error("--devices, --processes, --channels and every rate must be positive")
    args.processes = min(args.processes, args.devices)
    line = asyncio.run(run(args))
    summary(line)
    print(json.dumps(rounded(line)))


if __name__ == "__main__":
    main()
