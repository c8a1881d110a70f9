"""Command benchmark: API create → ``succeeded`` readable through the API, real stations.

The server runs as an operator runs it (``precisionpulse serve``, a process of its own) on a
PostgreSQL database of the bench's own and its own Mosquitto; STATIONS desktop agents run in
another process, trusting the server's key. As an Admin, the bench POSTs Ping commands and
follows each with a long-poll GET /api/v1/commands/{id}?wait_s= until it has ended
(``--poll-ms N``: a plain GET every N ms instead, for comparison): phase 1 at a steady
RATE a second, spread over the stations; phase 2 with IN_FLIGHT commands at once. In the
same run, the baselines: the bare MQTT round trip commands stand on (a QoS 2 publish on a
station's ``cmd`` topic, answered at QoS 1 on ``cmd/result`` by a bare client: no
database, no signature, no API) and one GET of the API alone.

    python -m bench.commands [--stations 100 --rate 10 --commands 200 --in-flight 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import command_stations as stations
from bench.command_stations import Helper, p50, p99
from bench.command_trips import STEPS, Api, Cpu, get_round_trips, in_flight, phase_figures, steady
from bench.seed import admin_and_devices
from bench.server_process import ServerProcess, settings_for
from bench.stack import DEFAULT_DATABASE, database_of_its_own
from broker.launcher import embedded_broker
from core.services.audit_checkpoints import keyed_database
from desktop.agent.fleet import new_credentials
from webui.backbone.server import server_signing_key

SERVER = ("server", "bench-server-secret")
ECHO = ("bench-echo", "bench-echo-secret")  # the bare station of the MQTT baseline
ADMIN = ("admin", "bench-admin-password")
P99_TARGET_MS = 50.0  # the target we were asked to meet, on these 2-core machines
WARM_UP_RATE = 20.0  # a Ping a station before measuring, this many a second: all online, pools warm
# Past the planned phases: start-up (a database, a server, a fleet) and the slowest command's
# deadline. A run that takes longer is stopped, and everything it started with it.
WATCHDOG_MARGIN_S = 240
STOPPED = (0, -signal.SIGINT)  # a clean stop: uvicorn re-raises the Ctrl-C it handled


async def _prepare(url: str, workdir: Path, credentials: dict[str, str]) -> bytes:
    """The Admin and the devices in the database; the server's public key (PEM)."""
    settings = settings_for(workdir, url)
    key = server_signing_key(settings.signing_key_file)  # the key the server will load
    database = keyed_database(settings)
    try:
        async with database.session() as session:
            await admin_and_devices(session, ADMIN, credentials)
    finally:
        await database.close()
    return key.public_key().to_pem()


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Start everything, measure the baselines and both phases, stop everything.

    Whatever was started is stopped on the way out, on an error, Ctrl-C or SIGTERM too:
    the server in its own session, the fleet, the broker, the database.
    """
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-commands-"))
    credentials = new_credentials("cmd", args.stations)
    accounts = {SERVER[0]: SERVER[1], ECHO[0]: ECHO[1], **credentials}
    codes: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(database_of_its_own(args.database_url))
        broker = await stack.enter_async_context(
            embedded_broker(workdir / "broker", users=accounts, prefer="mosquitto")
        )
        if broker.kind != "mosquitto":
            msg = "the command bench needs Mosquitto (apt-get install mosquitto)"
            raise RuntimeError(msg)
        _progress(f"preparing {args.stations} stations, the Admin and the keys ({workdir})")
        key_pem = await _prepare(url, workdir, credentials)
        # The bare MQTT round trip first, while no server is on the broker (the baseline
        # client takes the server's account: the broker binds client ids to accounts).
        with contextlib.ExitStack() as echoing:
            echo = Helper(stations.echo, broker.port, *ECHO)
            echoing.callback(echo.stop)
            await echo.wait_ready()
            raw = await stations.mqtt_round_trips(broker.port, SERVER, ECHO[0], args.baseline)
        _progress(f"starting the server and {args.stations} stations")
        fleet = Helper(stations.fleet, broker.port, credentials, key_pem, args.sample_hz)
        stack.callback(fleet.stop)
        server = ServerProcess(
            workdir, settings_for(workdir, url), broker_url=broker.url, account=SERVER
        )
        stack.callback(lambda: codes.append(server.stop()))
        api = Api(server.url, args.poll_ms / 1000)
        stack.push_async_callback(api.close)
        await asyncio.to_thread(server.wait_until_linked)
        await fleet.wait_ready()
        await api.sign_in(*ADMIN)
        cpu = Cpu(server.pid, fleet.pid)
        async with asyncio.timeout(_planned_s(args) + WATCHDOG_MARGIN_S):
            figures = await _measure(api, sorted(credentials), cpu, args)
    figures["raw_mqtt_p50_ms"], figures["raw_mqtt_p99_ms"] = p50(raw), p99(raw)
    if codes and codes[0] in STOPPED:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"warning: the server exited with {codes}; its log: {server.log}", file=sys.stderr)
    return figures


def _planned_s(args: argparse.Namespace) -> float:
    return 2 * args.commands / args.rate + args.burst_seconds


async def _measure(
    api: Api, devices: list[str], cpu: Cpu, args: argparse.Namespace
) -> dict[str, float]:
    _progress(f"warm-up: one Ping to each of {len(devices)} stations")
    warm, shares = await cpu.measure(
        lambda: steady(api, devices, WARM_UP_RATE, len(devices), follow=False)
    )
    figures = phase_figures("warm_up", warm, shares)
    gets = await get_round_trips(api, warm[-1].command["id"], args.baseline)  # a calm server
    figures["api_get_p50_ms"], figures["api_get_p99_ms"] = p50(gets), p99(gets)
    _progress(f"phase 0: {args.commands} Pings at {args.rate:g} a second, not polled")
    quiet, shares = await cpu.measure(
        lambda: steady(api, devices, args.rate, args.commands, follow=False)
    )
    figures |= phase_figures("unpolled", quiet, shares)
    _progress(f"phase 1: {args.commands} Pings at {args.rate:g} a second, each followed to its end")
    trips, shares = await cpu.measure(lambda: steady(api, devices, args.rate, args.commands))
    figures |= phase_figures("steady", trips, shares)
    _progress(f"phase 2: {args.burst} Pings, {args.in_flight} in flight at once")
    burst, shares = await cpu.measure(
        lambda: in_flight(api, devices, args.in_flight, args.burst, args.burst_seconds)
    )
    figures |= phase_figures("in_flight", burst, shares)
    return figures


def summary(args: argparse.Namespace, figures: dict[str, float]) -> dict[str, Any]:
    """Print the figures for a person; the JSON line's content."""
    raw50, raw99 = figures["raw_mqtt_p50_ms"], figures["raw_mqtt_p99_ms"]
    print(f"commands: Ping, API create → succeeded read through the API, {args.stations} stations")
    phases = (
        ("unpolled", f"{args.rate:g}/s unpolled"),
        ("steady", f"{args.rate:g}/s followed"),
        ("in_flight", f"{args.in_flight} in flight"),
    )
    for name, title in phases:
        f = {k.removeprefix(f"{name}_"): v for k, v in figures.items() if k.startswith(name)}
        print(
            f"  {title:<14} p50 {f['p50_ms']:6.1f} ms  p99 {f['p99_ms']:6.1f} ms  "
            f"max {f['max_ms']:6.1f} ms  {f['commands_per_s']:6.1f} commands/s  "
            f"({f['not_succeeded']:.0f} not succeeded; POST alone p50 {f['post_p50_ms']:.1f} ms)"
        )
        steps = "  ".join(
            f"{step[3:]} {f[f'{step}_p50_ms']:.1f}" for step in STEPS if f"{step}_p50_ms" in f
        )
        print(f"  {'':<14} p50 of each step (ms): {steps}")
        print(
            f"  {'':<14} created → finished (server, broker, station; no API): "
            f"p50 {f['server_p50_ms']:.1f} ms, p99 {f['server_p99_ms']:.1f} ms"
        )
        print(
            f"  {'':<14} CPU, share of a core: server {f['server_cpu']:.0%}, "
            f"fleet {f['fleet_cpu']:.0%}, bench {f['bench_cpu']:.0%}; "
            f"machine {f['machine_busy']:.0%} busy"
        )
    print(f"  raw MQTT round trip (QoS 2 out, QoS 1 back)  p50 {raw50:.2f} ms  p99 {raw99:.2f} ms")
    print(
        f"  API GET alone  p50 {figures['api_get_p50_ms']:.2f} ms  "
        f"p99 {figures['api_get_p99_ms']:.2f} ms ({_following(args)})"
    )
    worst99 = max(figures["steady_p99_ms"], figures["in_flight_p99_ms"])
    line: dict[str, Any] = {
        "p50_ms": figures["steady_p50_ms"],
        "p99_ms": figures["steady_p99_ms"],
        "commands_per_s": figures["in_flight_commands_per_s"],
        "p99_within_target": worst99 <= P99_TARGET_MS,
        "steady_p50_vs_raw_mqtt": figures["steady_p50_ms"] / raw50,
        "in_flight_p50_vs_raw_mqtt": figures["in_flight_p50_ms"] / raw50,
        **figures,
    }
    print(f"  p99 ≤ {P99_TARGET_MS:.0f} ms in both phases: {line['p99_within_target']}")
    return line


def _following(args: argparse.Namespace) -> str:
    if args.poll_ms:
        return f"the bench polls every {args.poll_ms:g} ms"
    return "the bench follows each command with long polls, ?wait_s="


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
    parser.add_argument(
        "--burst-seconds", type=float, default=30, help="phase 2: none starts after this long"
    )
    parser.add_argument(
        "--poll-ms", type=float, default=0, help="GET every this long instead of a long poll"
    )
    parser.add_argument("--sample-hz", type=float, default=1, help="each station's sampling")
    parser.add_argument("--baseline", type=int, default=200, help="raw round trips measured")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    line = summary(args, asyncio.run(run(args)))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in line.items()}))


if __name__ == "__main__":
    main()
