"""The station's commands for the ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from core.settings import Settings


def register(commands: Any) -> None:
    """Add ``agent`` to the command line's sub-parsers."""
    agent = commands.add_parser(
        "agent", help="run a station headless: sample, buffer in the outbox, stream to the broker"
    )
    agent.add_argument("--device", required=True, help="the device id (its MQTT username)")
    agent.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the device's MQTT password from stdin (default: PP_DEVICE_PASSWORD)",
    )
    agent.add_argument("--broker", help="mqtt:// or mqtts:// URL (default: PP_MQTT_URL)")
    agent.add_argument("--ca-file", type=Path, help="CA of the broker (default: PP_MQTT_CA_FILE)")
    agent.add_argument(
        "--source",
        action="append",
        help="simulated, host, module:factory or an entry point; repeatable (default: simulated)",
    )
    agent.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    agent.add_argument("--data-dir", type=Path, default=Path("data") / "stations")
    agent.set_defaults(run=_agent)


def _agent(settings: Settings, args: argparse.Namespace) -> int:
    from core.mqtt.endpoint import Endpoint
    from desktop.agent.agent import Agent, AgentConfig
    from desktop.agent.sources import load

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    password = password or os.environ.get("PP_DEVICE_PASSWORD")
    if not password:
        print(
            "error: give the device's password on stdin or in PP_DEVICE_PASSWORD", file=sys.stderr
        )
        return 1
    try:
        endpoint = Endpoint.from_url(
            args.broker or settings.mqtt_url,
            username=args.device,
            password=password,
            ca_file=args.ca_file or settings.mqtt_ca_file,
        )
        sources = [load(spec) for spec in args.source or ["simulated"]]
        config = AgentConfig(args.device, endpoint, args.data_dir, interval_s=args.interval)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    async def run() -> None:
        agent = Agent(config, sources)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await agent.start()
        print(
            f"station {args.device} sampling every {args.interval} s; outbox {config.outbox_path}"
        )
        await stop.wait()
        await agent.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
