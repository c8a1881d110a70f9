"""Commands a deployment's init job runs: register stations, hand out the server's public key.

Both may run on every start: they change nothing that is already in place.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from core.station_accounts import Provisioned


def register(commands: Any) -> None:
    """Add ``device ensure`` and ``signing-key`` to the command line's sub-parsers."""
    device = commands.add_parser("device", help="devices (stations)").add_subparsers(
        dest="action", required=True
    )
    ensure = device.add_parser(
        "ensure",
        help="register the stations PREFIX-001… that are missing, give a new password to those "
        "whose stored one no longer opens their account, and keep every password in "
        "--credentials (0600 JSON, what `simulate --credentials` reads); idempotent",
    )
    ensure.add_argument("--prefix", default="sim", help="device ids are PREFIX-001…")
    ensure.add_argument("--count", type=int, required=True, help="how many stations")
    ensure.add_argument("--credentials", type=Path, required=True, help="the JSON file")
    ensure.set_defaults(run=_ensure)

    key = commands.add_parser(
        "signing-key",
        help="create the server's signing key when absent (PP_SIGNING_KEY_FILE) and write its "
        "public half, which stations trust (--server-key), to --public-out",
    )
    key.add_argument("--public-out", type=Path, required=True, help="where the PEM goes")
    key.set_defaults(run=_signing_key)


def _ensure(settings: Settings, args: argparse.Namespace) -> int:
    from core.station_accounts import numbered_ids

    try:
        ids = numbered_ids(args.prefix, args.count)
        done = asyncio.run(_ensure_stations(settings, ids, args.credentials))
    except ValueError as error:  # no stations asked for, an unreadable credentials file
        print(f"error: {error}", file=sys.stderr)
        return 1
    parts = [
        f"{len(ids)} stations in {args.credentials}",
        f"registered {', '.join(done.registered) or 'none'}",
        f"new passwords for {', '.join(done.rekeyed) or 'none'}",
    ]
    if done.disabled:
        parts.append(f"disabled (left so): {', '.join(done.disabled)}")
    print("; ".join(parts))
    return 0


async def _ensure_stations(settings: Settings, ids: list[str], path: Path) -> Provisioned:
    from core.db.migrations import require_current_schema
    from core.services.audit_checkpoints import keyed_database
    from core.station_accounts import ensure_stations

    await require_current_schema(settings.async_database_url)
    database = keyed_database(settings)  # the devices it registers are audited, keyed
    try:
        return await ensure_stations(database, ids, path)
    finally:
        await database.close()


def _signing_key(settings: Settings, args: argparse.Namespace) -> int:
    from core.protocol.signing import load_or_create

    key = load_or_create(settings.signing_key_file)
    pem = key.public_key().to_pem()
    out: Path = args.public_out
    if not out.exists() or out.read_bytes() != pem:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(pem)
    out.chmod(0o644)  # a public key: stations and operators read it, whatever the umask
    print(f"the server's public key ({settings.signing_key_file}) is in {out}")
    return 0
