"""The station's commands for the ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from desktop import station_cli
from desktop.window.options import IDLE_MINUTES, WindowOptions
from desktop.window.theme import Scheme, chosen_scheme

if TYPE_CHECKING:
    from core.protocol.signing import VerifyingKey
    from desktop.agent.config import AgentConfig
    from desktop.agent.sources import Source


def register(commands: Any) -> None:
    """Add ``agent``, ``desktop`` and ``station`` to the command line's sub-parsers."""
    agent = commands.add_parser(
        "agent", help="run a station headless: sample, buffer in the outbox, stream to the broker"
    )
    agent.add_argument(
        "what",
        nargs="?",
        choices=("run", "status"),
        default="run",
        help="run (the default) the station, or show its outbox and who runs it (read-only: "
        "works beside a running station; needs only --device and --data-dir)",
    )
    _add_station_arguments(agent)
    agent.set_defaults(run=_agent)
    desktop = commands.add_parser(
        "desktop", help="run a station with its window: live values, chart, outbox, event log"
    )
    _add_station_arguments(desktop)
    desktop.add_argument(
        "--idle-minutes",
        type=float,
        default=IDLE_MINUTES,
        help="sign the operator out after this many minutes without mouse or keyboard input"
        f" (default: {IDLE_MINUTES:g})",
    )
    desktop.add_argument(
        "--theme",
        choices=[scheme.value for scheme in Scheme],
        help="light or dark, or follow the system (default: PP_WINDOW_THEME, else system)",
    )
    desktop.set_defaults(run=_desktop)
    station_cli.register(commands)


def _add_station_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every way of running a station takes."""
    parser.add_argument("--device", required=True, help="the device id (its MQTT username)")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the device's MQTT password from stdin (default: PP_DEVICE_PASSWORD)",
    )
    parser.add_argument("--broker", help="mqtt:// or mqtts:// URL (default: PP_MQTT_URL)")
    parser.add_argument("--ca-file", type=Path, help="CA of the broker (default: PP_MQTT_CA_FILE)")
    parser.add_argument(
        "--allow-plaintext",
        action="store_true",
        help="let a plain mqtt:// URL reach another machine, on a trusted network only"
        " (default: PP_MQTT_ALLOW_PLAINTEXT; loopback is always allowed)",
    )
    parser.add_argument(
        "--source",
        action="append",
        help="simulated, host, module:factory or an entry point; repeatable (default: simulated)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between samples until the device's configuration says otherwise",
    )
    add_server_key_argument(parser)
    parser.add_argument("--data-dir", type=Path, default=Path("data") / "stations")


def add_server_key_argument(parser: argparse.ArgumentParser) -> None:
    """``--server-key``: the public key desired configurations must be signed with."""
    parser.add_argument(
        "--server-key",
        type=Path,
        help="the server's public key (PEM; the server writes it as server-signing-key.pub.pem)"
        " — without it desired configurations are refused (default: PP_SERVER_PUBLIC_KEY_FILE)",
    )


def server_keys(settings: Settings, given: Path | None) -> tuple[VerifyingKey, ...]:
    """The server key a station trusts, from the flag or settings; ValueError if unreadable."""
    from core.protocol.signing import VerifyingKey

    path = given or settings.server_public_key_file
    if path is None:
        return ()
    try:
        return (VerifyingKey.from_pem(path.read_bytes()),)
    except (OSError, ValueError) as error:
        msg = f"cannot use {path} as the server's public key: {error}"
        raise ValueError(msg) from error


def _station_config(
    settings: Settings, args: argparse.Namespace
) -> tuple[AgentConfig, list[Source]]:
    """The station's configuration and sources from its flags; ValueError says what is wrong."""
    from core.mqtt.endpoint import Endpoint
    from desktop.agent.config import AgentConfig
    from desktop.agent.sources import load

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    password = password or os.environ.get("PP_DEVICE_PASSWORD")
    if not password:
        msg = "give the device's password on stdin or in PP_DEVICE_PASSWORD"
        raise ValueError(msg)
    endpoint = Endpoint.from_url(
        args.broker or settings.mqtt_url,
        username=args.device,
        password=password,
        ca_file=args.ca_file or settings.mqtt_ca_file,
    )
    # The device's password goes out in the CONNECT: over plain MQTT, anyone on the path
    # could read it and become this station.
    endpoint.refuse_plaintext(
        allowed=args.allow_plaintext or settings.mqtt_allow_plaintext,
        how_to_allow="pass --allow-plaintext on a trusted network",
    )
    sources = [load(spec) for spec in args.source or ["simulated"]]
    keys = server_keys(settings, args.server_key)
    config = AgentConfig(
        args.device, endpoint, args.data_dir, interval_s=args.interval, server_keys=keys
    )
    return config, sources


def _desktop(settings: Settings, args: argparse.Namespace) -> int:
    from desktop.agent.station_lock import StationRunningError

    try:
        config, sources = _station_config(settings, args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        options = WindowOptions(
            scheme=Scheme(args.theme) if args.theme else chosen_scheme(),
            idle_minutes=args.idle_minutes,
            max_failures=settings.login_max_failures,
            lock_seconds=settings.login_lock_seconds,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from desktop.window.app import run_window  # Qt is loaded only for this command

    try:
        return run_window(config, sources, options)
    except StationRunningError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _agent(settings: Settings, args: argparse.Namespace) -> int:
    from desktop.agent.agent import Agent
    from desktop.agent.station_lock import StationRunningError

    if args.what == "status":
        return _status(args)
    try:
        config, sources = _station_config(settings, args)
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

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except StationRunningError as error:  # before anything else: one line, exit 1
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    """Print what a station's outbox holds and who runs it; reads, never locks or writes."""
    from desktop.agent.config import outbox_file
    from desktop.agent.outbox import summary
    from desktop.agent.station_lock import holder, lock_file

    path = outbox_file(args.data_dir, args.device)
    try:
        outbox = summary(path)
    except FileNotFoundError:
        print(f"error: station {args.device} has no outbox in {args.data_dir}", file=sys.stderr)
        return 1
    except sqlite3.Error as error:  # not an outbox, or damaged
        print(f"error: cannot read the outbox {path}: {error}", file=sys.stderr)
        return 1
    running = holder(lock_file(path))
    rows = {
        "device": args.device,
        "stream": outbox.stream,
        "last seq": outbox.last_seq,
        "acked seq": outbox.acked_seq,
        "backlog": f"{outbox.depth} samples",
        "config version": outbox.config_version or "none applied",
        "running": "no" if running is None else f"yes ({running})",
    }
    for name, value in rows.items():
        print(f"{name + ':':<16}{value}")
    return 0
