"""``precisionpulse simulate``: a fleet of simulated stations in one process.

It says what the stations' links do (connected, refused, no broker) as it changes, and
exits 1 when the broker refuses every station for good.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from core.settings import Settings
from desktop.cli import add_server_key_argument, server_keys


def register(commands: Any) -> None:
    """Add ``simulate`` to the command line's sub-parsers."""
    simulate = commands.add_parser(
        "simulate", help="run many simulated stations in one process (demos, load tests)"
    )
    simulate.add_argument("--devices", type=int, default=10, help="how many stations")
    simulate.add_argument("--rate", type=float, default=1.0, help="samples a second, each")
    simulate.add_argument(
        "--credentials",
        type=Path,
        default=Path("data") / "fleet" / "credentials.json",
        help="JSON object: device id → MQTT password",
    )
    simulate.add_argument(
        "--register",
        action="store_true",
        help="first register the stations in the database (PP_DATABASE_URL) and write "
        "their credentials to --credentials",
    )
    simulate.add_argument("--prefix", default="sim", help="device ids are PREFIX-001…")
    simulate.add_argument("--broker", help="mqtt:// or mqtts:// URL (default: PP_MQTT_URL)")
    simulate.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="let a plain mqtt:// URL reach another machine (trusted networks only)",
    )
    simulate.add_argument("--data-dir", type=Path, default=Path("data") / "fleet")
    add_server_key_argument(simulate)
    simulate.set_defaults(run=_simulate)


async def _register(settings: Settings, ids: list[str]) -> dict[str, str]:
    from core.db.migrations import require_current_schema
    from core.services import devices
    from core.services.actor import Actor
    from core.services.audit_checkpoints import keyed_database

    await require_current_schema(settings.async_database_url)
    shell = Actor(name="simulate", permissions=frozenset({"devices:write", "devices:read"}))
    database = keyed_database(settings)  # the devices it registers are audited, keyed
    credentials = {}
    try:
        async with database.session() as session:
            for device_id in ids:
                made = await devices.create_device(
                    session, actor=shell, device_id=device_id, name=f"simulated {device_id}"
                )
                credentials[made.username] = made.password
    finally:
        await database.close()
    return credentials


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from core.errors import DomainError
    from core.mqtt.endpoint import Endpoint
    from desktop.agent.fleet import Fleet, load_credentials, new_credentials, template
    from desktop.agent.fleet_links import FleetLinks, where
    from desktop.agent.station_lock import StationRunningError

    if args.devices < 1 or args.rate <= 0:
        print("error: --devices and --rate must be positive", file=sys.stderr)
        return 1
    try:
        endpoint = Endpoint.from_url(
            args.broker or settings.mqtt_url, ca_file=settings.mqtt_ca_file
        )
        endpoint.refuse_plaintext(  # every station's password would go out in the clear
            allowed=args.allow_plaintext or settings.mqtt_allow_plaintext,
            how_to_allow="pass --allow-plaintext on a trusted network",
        )
        if args.register:
            ids = sorted(new_credentials(args.prefix, args.devices))
            credentials = asyncio.run(_register(settings, ids))
            args.credentials.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(args.credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                json.dump(credentials, file, indent=1)
            print(f"registered {len(credentials)} stations; credentials in {args.credentials}")
        credentials = dict(sorted(load_credentials(args.credentials).items())[: args.devices])
        keys = server_keys(settings, args.server_key)
        fleet = Fleet(credentials, template(endpoint, args.data_dir, args.rate, keys))
    except (ValueError, DomainError, StationRunningError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    async def run() -> bool:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        count = len(fleet.agents)
        print(
            f"starting {count} stations, sampling at {args.rate:g} Hz each, broker"
            f" {where(endpoint)}; Ctrl-C stops them",
            flush=True,
        )
        # FleetLinks says what the links do, a line per change: the supervisors' own lines
        # come once per station and attempt ("not retrying" on a refusal it retries).
        logging.getLogger("core.mqtt.supervisor").setLevel(logging.CRITICAL)
        await fleet.start()
        links = FleetLinks(fleet.agents, lambda line: print(line, flush=True))
        try:
            return await links.watch(endpoint, stop)
        finally:
            await fleet.stop()

    with contextlib.suppress(KeyboardInterrupt):
        if not asyncio.run(run()):
            print(f"error: the broker at {where(endpoint)} refused every station", file=sys.stderr)
            return 1
    return 0
