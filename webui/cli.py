"""The server's commands for the ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings


def register(commands: Any) -> None:
    """Add ``serve`` to the command line's sub-parsers."""
    serve = commands.add_parser("serve", help="run the web server (API and UI)")
    serve.add_argument("--host", help="listen address (default: PP_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: PP_HTTP_PORT)")
    serve.set_defaults(run=_serve)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from webui.app import serve  # the UI stack loads only when serving

    serve(settings, host=args.host, port=args.port)
    return 0
