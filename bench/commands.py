"""Command benchmark: API create → ``succeeded`` readable through the API, real stations.

The server runs as an operator runs it (``precisionpulse serve``, a process of its own) on a
PostgreSQL database of the bench's own and its own Mosquitto; STATIONS desktop agents run in
another process, trusting the server's key. As an Admin, the bench POSTs Ping commands and
polls GET /api/v1/commands/{id} every POLL_MS until each has ended: phase 1 at a steady
RATE a second, spread over the stations; phase 2 with IN_FLIGHT commands at once. In the
same run, the baselines: the bare MQTT round trip commands stand on (a QoS 2 publish on a
station's ``cmd`` topic, answered at QoS 1 on ``cmd/result`` by a bare client: no
database, no signature, no API) and one GET of the API alone.

    python -m bench.commands [--stations 100 --rate 10 --commands 200 --in-flight 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench import command_stations as stations
from bench.command_stations import p50, p99
from bench.cpu import machine_seconds, process_seconds
from bench.server_process import ServerProcess, settings_for
from bench.stack import DEFAULT_DATABASE, database_of_its_own
from broker.launcher import embedded_broker
from core.db.engine import Database
from core.db.models import Device
from core.passwords import mosquitto_hash
from core.protocol.commands import PING, TERMINAL
from core.services import audit_checkpoints, roles, users
from desktop.agent.fleet import new_credentials
from webui.backbone.server import server_signing_key

SERVER = ("server", "bench-server-secret")
ECHO = ("bench-echo", "bench-echo-secret")  # the bare station of the MQTT baseline
ADMIN = ("admin", "bench-admin-password")
P99_TARGET_MS = 50.0  # the target we were asked to meet, on these 2-core machines
WARM_UP_CONCURRENCY = 20  # one Ping per station before measuring: all online, pools warm
TIMEOUT_S = 30  # each command's deadline: far beyond any round trip measured here
READY_S = 120.0
# A clean stop: uvicorn re-raises the Ctrl-C it handled once it has shut down.
STOPPED = (0, -signal.SIGINT)  # the fleet's start and connects; the echo's connect


@dataclass(frozen=True)
class Trip:
    """One command: how long until the API said it ended, and how it ended."""

    ms: float  # POST sent → a GET answered a terminal state
    post_ms: float  # the POST's own round trip
    started: float  # wall clock (s), to place the server's times
    observed: float
    command: dict[str, Any]  # as the last GET answered it


class Api:
    """The server's REST API, as the Admin calls it."""

    def __init__(self, url: str, poll_s: float) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.client = httpx.AsyncClient(base_url=f"{url}/api/v1", limits=limits, timeout=30)
        self.poll_s = poll_s

    async def sign_in(self) -> None:
        """Sign in as the Admin: every later call carries the access token."""
        login = await self.client.post(
            "/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        login.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

    async def get(self, cmd_id: str) -> dict[str, Any]:
        """The command as it stands."""
        response = await self.client.get(f"/commands/{cmd_id}")
        response.raise_for_status()
        command: dict[str, Any] = response.json()
        return command

    async def ping(self, device_id: str) -> Trip:
        """POST a Ping, then GET it every ``poll_s`` until it has ended."""
        started, start = time.time(), time.perf_counter()
        body = {"kind": PING, "args": {}, "timeout_s": TIMEOUT_S}
        response = await self.client.post(f"/devices/{device_id}/commands", json=body)
        response.raise_for_status()
        post_ms = (time.perf_counter() - start) * 1000
        command: dict[str, Any] = response.json()
        while command["state"] not in TERMINAL:
            await asyncio.sleep(self.poll_s)
            command = await self.get(command["id"])
        ms = (time.perf_counter() - start) * 1000
        return Trip(ms, post_ms, started, time.time(), command)

    async def close(self) -> None:
        """Close the connections."""
        await self.client.aclose()


async def steady(api: Api, devices: list[str], rate: float, count: int) -> list[Trip]:
    """``count`` Pings at ``rate`` a second (open loop: each on time, whatever came before)."""
    start = time.perf_counter()
    tasks = []
    async with asyncio.TaskGroup() as group:
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
            tasks.append(group.create_task(api.ping(devices[n % len(devices)])))
    return [task.result() for task in tasks]


async def in_flight(api: Api, devices: list[str], width: int, count: int) -> list[Trip]:
    """``count`` Pings, ``width`` of them in flight at any time (closed loop)."""
    numbers = iter(range(count))
    trips: list[Trip] = []

    async def worker() -> None:
        for n in numbers:
            trips.append(await api.ping(devices[n % len(devices)]))

    async with asyncio.TaskGroup() as group:
        for _ in range(width):
            group.create_task(worker())
    return trips


async def get_round_trips(api: Api, cmd_id: str, count: int) -> list[float]:
    """Milliseconds of one GET of an ended command, one at a time: the poll's own cost."""
    trips = []
    for _ in range(count):
        start = time.perf_counter()
        await api.get(cmd_id)
        trips.append((time.perf_counter() - start) * 1000)
    return trips


class Cpu:
    """CPU shares (of one core) of the server and the fleet, and of the machine, per phase."""

    def __init__(self, server: int, fleet: int) -> None:
        self.pids = {"server": server, "fleet": fleet}

    async def measure(
        self, phase: Callable[[], Awaitable[list[Trip]]]
    ) -> tuple[list[Trip], dict[str, float]]:
        """Run ``phase``; its trips, wall seconds and CPU shares."""
        before = {name: process_seconds(pid) for name, pid in self.pids.items()}
        busy, total = machine_seconds()
        wall = time.perf_counter()
        trips = await phase()
        wall = time.perf_counter() - wall
        shares = {f"{n}_cpu": (process_seconds(p) - before[n]) / wall for n, p in self.pids.items()}
        busy_after, total_after = machine_seconds()
        shares["machine_busy"] = (busy_after - busy) / max(1e-9, total_after - total)
        shares["seconds"] = wall
        return trips, shares


def phase_figures(name: str, trips: list[Trip], cpu: dict[str, float]) -> dict[str, float]:
    """p50/p99, commands a second, failures and where the time went (ms, p50 each step)."""
    ms = [trip.ms for trip in trips]
    figures = {
        f"{name}_p50_ms": p50(ms),
        f"{name}_p99_ms": p99(ms),
        f"{name}_max_ms": max(ms),
        f"{name}_commands": float(len(trips)),
        f"{name}_commands_per_s": len(trips) / cpu["seconds"],
        f"{name}_not_succeeded": float(sum(t.command["state"] != "succeeded" for t in trips)),
    }
    steps: dict[str, list[float]] = {}
    for trip in trips:
        for step, value in _steps(trip).items():
            steps.setdefault(step, []).append(value)
    for step, values in steps.items():
        figures[f"{name}_{step}_p50_ms"] = p50(values)
        figures[f"{name}_{step}_p99_ms"] = p99(values)
    figures.update({f"{name}_{key}": value for key, value in cpu.items() if key != "seconds"})
    return figures


def _steps(trip: Trip) -> dict[str, float]:
    """The way of one command, on the server's clock (the same machine's)."""
    command = trip.command
    if command["state"] != "succeeded":
        return {}
    at = {k: datetime.fromisoformat(command[k]).timestamp() for k in _STEP_TIMES}
    marks = [trip.started, *(at[k] for k in _STEP_TIMES), trip.observed]
    return {n: (b - a) * 1000 for n, a, b in zip(STEPS, marks[:-1], marks[1:], strict=True)}


_STEP_TIMES = ("created_at", "sent_at", "delivered_at", "finished_at")
# POST sent → created (the server's clock) → sent (QoS 2 complete) → delivered (the
# station's answer recorded) → finished (its result recorded) → observed by a GET.
STEPS = ("to_created", "to_sent", "to_delivered", "to_finished", "to_observed")


async def _prepare(url: str, workdir: Path, credentials: dict[str, str]) -> bytes:
    """The Admin and the devices in the database; the server's public key (PEM)."""
    settings = settings_for(workdir, url)
    key = server_signing_key(settings.signing_key_file)  # the key the server will load
    audit_key = audit_checkpoints.load_or_create_key(audit_checkpoints.key_path(settings))
    database = Database(settings.async_database_url, audit_key=audit_key)
    try:
        async with database.session() as session:
            await roles.ensure_builtins(session)
            await users.bootstrap_user(
                session, username=ADMIN[0], password=ADMIN[1], roles=["Admin"]
            )
            for device_id, password in credentials.items():
                session.add(Device(id=device_id, mqtt_password_hash=mosquitto_hash(password)))
    finally:
        await database.close()
    return key.public_key().to_pem()


class Helper:
    """A spawned process (the fleet, the echo) that says ready and runs until stopped."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready, self.stop_event = context.Queue(), context.Event()
        self.process = context.Process(target=target, args=(*args, self.ready, self.stop_event))
        self.process.start()
        assert self.process.pid is not None  # started
        self.pid: int = self.process.pid

    async def wait_ready(self) -> None:
        """Until the process says it is ready (RuntimeError if it dies first)."""
        await asyncio.to_thread(self.ready.get, True, READY_S)

    def stop(self) -> None:
        """Ask it to stop; kill it if it does not."""
        self.stop_event.set()
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Start everything, measure the baselines and both phases, stop everything."""
    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-commands-"))
    credentials = new_credentials("cmd", args.stations)
    users_ = {SERVER[0]: SERVER[1], ECHO[0]: ECHO[1], **credentials}
    async with (
        database_of_its_own(args.database_url) as url,
        embedded_broker(workdir / "broker", users=users_, prefer="mosquitto") as broker,
    ):
        if broker.kind != "mosquitto":
            msg = "the command bench needs Mosquitto (apt-get install mosquitto)"
            raise RuntimeError(msg)
        _progress(f"preparing {args.stations} stations, the Admin and the keys ({workdir})")
        key_pem = await _prepare(url, workdir, credentials)
        # The bare MQTT round trip first, while no server is on the broker (the baseline
        # client takes the server's account: the broker binds client ids to accounts).
        echo = Helper(stations.echo, broker.port, *ECHO)
        try:
            await echo.wait_ready()
            raw = await stations.mqtt_round_trips(broker.port, SERVER, ECHO[0], args.baseline)
        finally:
            echo.stop()
        fleet = Helper(stations.fleet, broker.port, credentials, key_pem, args.sample_hz)
        server = ServerProcess(
            workdir, settings_for(workdir, url), broker_url=broker.url, account=SERVER
        )
        api = Api(server.url, args.poll_ms / 1000)
        try:
            _progress(f"starting the server ({server.log}) and {args.stations} stations")
            await asyncio.to_thread(server.wait_until_linked)
            await fleet.wait_ready()
            await api.sign_in()
            figures = await _measure(api, sorted(credentials), Cpu(server.pid, fleet.pid), args)
            figures["raw_mqtt_p50_ms"], figures["raw_mqtt_p99_ms"] = p50(raw), p99(raw)
        finally:
            await api.close()
            fleet.stop()
            code = await asyncio.to_thread(server.stop)
    if code in STOPPED:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"warning: the server exited with {code}; its log: {server.log}", file=sys.stderr)
    return figures


async def _measure(
    api: Api, devices: list[str], cpu: Cpu, args: argparse.Namespace
) -> dict[str, float]:
    _progress(f"warm-up: one Ping to each of {len(devices)} stations")
    await in_flight(api, devices, WARM_UP_CONCURRENCY, len(devices))
    _progress(f"phase 1: {args.commands} Pings at {args.rate:g} a second")
    trips, shares = await cpu.measure(lambda: steady(api, devices, args.rate, args.commands))
    figures = phase_figures("steady", trips, shares)
    _progress(f"phase 2: {args.burst} Pings, {args.in_flight} in flight at once")
    burst, shares = await cpu.measure(lambda: in_flight(api, devices, args.in_flight, args.burst))
    figures |= phase_figures("in_flight", burst, shares)
    gets = await get_round_trips(api, trips[-1].command["id"], args.baseline)
    figures["api_get_p50_ms"], figures["api_get_p99_ms"] = p50(gets), p99(gets)
    return figures


def summary(args: argparse.Namespace, figures: dict[str, float]) -> dict[str, Any]:
    """Print the figures for a person; the JSON line's content."""
    raw50, raw99 = figures["raw_mqtt_p50_ms"], figures["raw_mqtt_p99_ms"]
    print(f"commands: Ping, API create → succeeded read through the API, {args.stations} stations")
    for name, title in (
        ("steady", f"{args.rate:g}/s steady"),
        ("in_flight", f"{args.in_flight} in flight"),
    ):
        f = {k.removeprefix(f"{name}_"): v for k, v in figures.items() if k.startswith(name)}
        print(
            f"  {title:<14} p50 {f['p50_ms']:6.1f} ms  p99 {f['p99_ms']:6.1f} ms  "
            f"max {f['max_ms']:6.1f} ms  {f['commands_per_s']:6.1f} commands/s  "
            f"({f['not_succeeded']:.0f} not succeeded; server {f['server_cpu']:.0%} of a core, "
            f"fleet {f['fleet_cpu']:.0%}, machine {f['machine_busy']:.0%} busy)"
        )
        steps = "  ".join(
            f"{step[3:]} {f[f'{step}_p50_ms']:.1f}" for step in STEPS if f"{step}_p50_ms" in f
        )
        print(f"  {'':<14} p50 per step (ms): {steps}")
    print(f"  raw MQTT round trip (QoS 2 out, QoS 1 back)  p50 {raw50:.2f} ms  p99 {raw99:.2f} ms")
    print(
        f"  API GET alone  p50 {figures['api_get_p50_ms']:.2f} ms  "
        f"p99 {figures['api_get_p99_ms']:.2f} ms (poll every {args.poll_ms:g} ms)"
    )
    worst99 = max(figures["steady_p99_ms"], figures["in_flight_p99_ms"])
    line: dict[str, Any] = {
        "p50_ms": figures["steady_p50_ms"],
        "p99_ms": figures["steady_p99_ms"],
        "commands_per_s": figures["in_flight_commands_per_s"],
        "p99_within_target": worst99 <= P99_TARGET_MS,
        "steady_vs_raw_mqtt_p50": figures["steady_p50_ms"] / raw50,
        "in_flight_vs_raw_mqtt_p50": figures["in_flight_p50_ms"] / raw50,
        **figures,
    }
    print(f"  p99 target {P99_TARGET_MS:.0f} ms in both phases: {line['p99_within_target']}")
    return line


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    """Parse arguments, run, print a summary and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10, help="phase 1: Pings a second")
    parser.add_argument("--commands", type=int, default=200, help="phase 1: Pings in all")
    parser.add_argument("--in-flight", type=int, default=50, help="phase 2: Pings at once")
    parser.add_argument("--burst", type=int, default=500, help="phase 2: Pings in all")
    parser.add_argument("--poll-ms", type=float, default=2, help="GET every this long")
    parser.add_argument("--sample-hz", type=float, default=1, help="each station's sampling")
    parser.add_argument("--baseline", type=int, default=200, help="raw round trips measured")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    line = summary(args, asyncio.run(run(args)))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in line.items()}))


if __name__ == "__main__":
    main()
