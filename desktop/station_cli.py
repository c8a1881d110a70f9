"""``precisionpulse station``: a station's people, read from its replica — offline, beside it.

``login`` checks a password as the station's window does (its failures count toward the
station's lockout, so a script cannot guess past it); ``users`` lists what the replica
holds. Neither needs the network, and both work while the station runs: ``users`` opens
the file read-only, ``login`` writes only its failure count, in a transaction of a few
milliseconds.
"""

from __future__ import annotations

import argparse
import getpass
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from desktop.agent.replica import Replica


def register(commands: Any) -> None:
    """Add ``station login`` and ``station users`` to the command line's sub-parsers."""
    station = commands.add_parser(
        "station",
        help="a station's users, from its replica (offline, and beside a running station)",
    )
    actions = station.add_subparsers(dest="action", required=True)
    login = actions.add_parser(
        "login",
        help="check a password against the station's replica: exit 0 and print the roles and "
        "permissions, or exit 1 and why; a failure counts toward the station's lockout, as at "
        "its window",
    )
    _replica_arguments(login)
    login.add_argument("--username", required=True)
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (else: ask)"
    )
    login.set_defaults(run=_login)
    users = actions.add_parser(
        "users", help="list the replica's users and roles, and its sync cursor (read-only)"
    )
    _replica_arguments(users)
    users.set_defaults(run=_users)


def _replica_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", required=True, help="the station's device id")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data") / "stations",
        help="where the station keeps its files (the agent's --data-dir)",
    )


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _open(args: argparse.Namespace, *, read_only: bool) -> Replica | str:
    """The station's replica (never created here), or what to tell the person."""
    from core.protocol.topics import check_device_id
    from desktop.agent.replica import Replica, replica_path

    try:
        check_device_id(args.device)
    except ValueError as error:
        return str(error)
    path = replica_path(args.data_dir, args.device)
    try:
        return Replica(path, device_id=args.device, read_only=read_only, create=False)
    except FileNotFoundError:
        return (
            f"no replica for device {args.device} in {args.data_dir}: start the station once"
            f" (precisionpulse desktop --device {args.device} …), or give the --data-dir it uses"
        )
    except (sqlite3.Error, RuntimeError) as error:  # not a replica, damaged, or newer
        return f"cannot read the replica {path}: {error}"


def _login(settings: Settings, args: argparse.Namespace) -> int:
    from desktop.agent.sign_in import SignInRefused, sign_in_with

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    if not password:
        return _error("no password given (on stdin with --password-stdin, or at the prompt)")
    replica = _open(args, read_only=False)
    if isinstance(replica, str):
        return _error(replica)
    try:
        with replica:
            person = sign_in_with(replica, args.username, password, settings)
    except SignInRefused as refused:
        return _error(f"sign-in refused: {refused.cause}")
    except sqlite3.Error as error:
        return _error(f"cannot use the replica: {error}")
    name = f" ({person.display_name})" if person.display_name else ""
    print(f"{'accepted:':<14}{person.username}{name}")
    print(f"{'roles:':<14}{', '.join(person.roles) or 'none'}")
    print(f"{'permissions:':<14}{', '.join(sorted(person.permissions)) or 'none'}")
    return 0


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _users(settings: Settings, args: argparse.Namespace) -> int:
    replica = _open(args, read_only=True)
    if isinstance(replica, str):
        return _error(replica)
    try:
        with replica:
            status, people = replica.status(), replica.people()
    except sqlite3.Error as error:
        return _error(f"cannot read the replica: {error}")
    synced = status.last_sync_at
    rows = {
        "device": args.device,
        "sync cursor": str(status.cursor),
        "last sync": f"{synced:%Y-%m-%d %H:%M:%S} UTC" if synced else "never",
        "pending edits": str(status.pending),
        "users": str(len(people)),
    }
    for name, value in rows.items():
        print(f"{name + ':':<16}{value}")
    if people:
        print()
        table = [("USERNAME", "DISPLAY NAME", "ENABLED", "ROLES")]
        table += [
            (p.username, p.display_name, "yes" if p.is_active else "no", ", ".join(p.roles))
            for p in people
        ]
        print("\n".join(_table(table)))
    return 0
