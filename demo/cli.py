"""The demo's command for the ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.settings import ExposedSecretError, Settings


def register(commands: Any) -> None:
    """Add ``demo`` to the command line's sub-parsers."""
    demo = commands.add_parser(
        "demo", help="the first look: broker, server and three simulated stations in one process"
    )
    demo.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="database, broker and stations"
    )
    demo.add_argument("--host", help="listen address (default: PP_HTTP_HOST, 127.0.0.1)")
    demo.add_argument("--port", type=int, help="listen port (default: PP_HTTP_PORT, 8080)")
    demo.add_argument(
        "--broker",
        choices=["mosquitto", "amqtt"],
        default="mosquitto",
        help="Mosquitto when installed (default), else amqtt in-process",
    )
    demo.add_argument(
        "--broker-port",
        type=int,
        help="the embedded broker's loopback port (default: 1883, else a free one if taken)",
    )
    demo.add_argument(
        "--reset-admin-password",
        action="store_true",
        help="give 'admin' a new password (PP_ADMIN_PASSWORD or generated) and print it",
    )
    # Given by `make run`, so the hints the demo prints are make commands (make passes
    # flags in ARGS only); nobody types it.
    demo.add_argument("--via-make", action="store_true", help=argparse.SUPPRESS)
    demo.set_defaults(run=_demo)


def _given(args: argparse.Namespace) -> list[str]:
    """The flags this run was given, but for resetting the password: to run it again."""
    given = [] if args.data_dir == Path("data") else ["--data-dir", str(args.data_dir)]
    for flag, value in (("--host", args.host), ("--port", args.port)):
        given += [] if value is None else [flag, str(value)]
    given += [] if args.broker == "mosquitto" else ["--broker", args.broker]
    given += [] if args.broker_port is None else ["--broker-port", str(args.broker_port)]
    return given


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from demo.hints import reset_command

    try:
        from demo.launch import run_demo  # the UI stack loads only when the demo runs

        return run_demo(
            settings,
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            prefer=args.broker,
            reset_admin=args.reset_admin_password,
            broker_port=args.broker_port,
            reset_command=reset_command(_given(args), via_make=args.via_make),
        )
    except ExposedSecretError as error:  # checked before anything is prepared
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # once serving, the demo stops cleanly and returns instead
        print("interrupted while preparing the demo: nothing was started", file=sys.stderr)
        return 130
