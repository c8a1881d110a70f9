"""The server's commands for the ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.settings import ExposedSecretError, Settings


def register(commands: Any) -> None:
    """Add ``serve`` to the command line's sub-parsers."""
    serve = commands.add_parser("serve", help="run the web server (API and UI)")
    serve.add_argument("--host", help="listen address (default: PP_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: PP_HTTP_PORT)")
    serve.add_argument(
        "--ssl-certfile",
        type=Path,
        help="serve HTTPS with this PEM certificate (chain); default: PP_SSL_CERTFILE",
    )
    serve.add_argument(
        "--ssl-keyfile", type=Path, help="the certificate's private key; default: PP_SSL_KEYFILE"
    )
    serve.set_defaults(run=_serve)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from webui.app import serve  # the UI stack loads only when serving
    from webui.http.tls import TlsFilesError

    if args.ssl_certfile or args.ssl_keyfile:  # the flags replace the settings' pair whole
        tls = {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile}
        settings = settings.model_copy(update=tls)
    try:
        serve(settings, host=args.host, port=args.port)
    except (TlsFilesError, ExposedSecretError) as error:  # checked before anything starts
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
