"""The ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core import provision_cli
from core.db import migrations
from core.db.engine import UnsupportedDatabaseError
from core.errors import DomainError, InvalidError
from core.protocol.signing import SigningKey
from core.rbac import ADMIN, BUILTIN_ROLES
from core.services import audit, roles, users
from core.services.audit import ChainReport
from core.services.audit_checkpoints import (
    AuditTrail,
    CheckpointLog,
    checkpoint_path,
    key_path,
    keyed_database,
)
from core.settings import Settings

COMMAND_GROUP = "precisionpulse.commands"
# What a plugin's sub-parser stores as ``run``: handles the parsed command, returns an exit code.
Command = Callable[[Settings, argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="precisionpulse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    # Front ends add their own commands (``serve``, later ``agent``…) through entry points,
    # so core never imports them.
    for plugin in entry_points(group=COMMAND_GROUP):
        plugin.load()(commands)
    provision_cli.register(commands)  # what a deployment's init job runs

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True
    )
    up = db.add_parser("upgrade", help="apply migrations (default: to the newest)")
    up.add_argument("revision", nargs="?", default="head")
    down = db.add_parser("downgrade", help="revert migrations to a revision")
    down.add_argument("revision")
    db.add_parser("current", help="show the schema revision of the database")

    user = commands.add_parser("user", help="user accounts").add_subparsers(
        dest="action", required=True
    )
    user.add_parser(
        "bootstrap",
        help="when no user exists yet, create 'admin' (password: PP_ADMIN_PASSWORD or generated)",
    )
    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="action", required=True
    )
    audit.add_parser(
        "verify",
        help="check the keyed hash chain against the server's last signed checkpoint "
        "(exit 1 unless intact; writes no checkpoint)",
    )
    create = user.add_parser("create", help="create a user (the first admin, say)")
    create.add_argument("--username", required=True)
    create.add_argument(
        "--role",
        action="append",
        required=True,
        help=f"repeatable; built-in: {', '.join(BUILTIN_ROLES)}",
    )
    create.add_argument("--display-name", default="")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input (keeps it out of shell history)",
    )
    return parser


async def _require_server_audit_key(session: AsyncSession, settings: Settings) -> None:
    """InvalidError unless the audit key found here is the one the server chains with."""
    if not await audit.key_fits(session):
        msg = (
            f"the audit key {key_path(settings)} did not sign this database's audit log: "
            "run this where the server runs, or give it the server's PP_SIGNING_KEY_FILE or "
            "PP_AUDIT_KEY_FILE (entries written with another key would read as forged)"
        )
        raise InvalidError(msg)


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> str:
    await migrations.require_current_schema(settings.async_database_url)
    database = keyed_database(settings)  # users created here are audited, keyed
    try:
        async with database.session() as session:
            await _require_server_audit_key(session, settings)
            await roles.ensure_builtins(session)
            user = await users.bootstrap_user(
                session,
                username=args.username,
                password=password,
                roles=args.role,
                display_name=args.display_name,
            )
            return f"created user {user.username} ({', '.join(args.role)}) id={user.id}"
    finally:
        await database.close()


async def _bootstrap_admin(settings: Settings) -> str:
    await migrations.require_current_schema(settings.async_database_url)
    database = keyed_database(settings)  # users created here are audited, keyed
    try:
        async with database.session() as session:
            await _require_server_audit_key(session, settings)
            await roles.ensure_builtins(session)
            if await users.any_user(session):
                return "users exist already: nothing to bootstrap"
            password = os.environ.get("PP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            await users.bootstrap_user(session, username="admin", password=password, roles=[ADMIN])
    finally:
        await database.close()
    shown = "from PP_ADMIN_PASSWORD" if os.environ.get("PP_ADMIN_PASSWORD") else password
    return f"created the first user: admin / {shown} (shown once; change it after signing in)"


async def _verify_audit(settings: Settings) -> ChainReport:
    await migrations.require_current_schema(settings.async_database_url)
    signing_key = SigningKey.from_pem(settings.signing_key_file.read_bytes())
    database = keyed_database(settings)
    checkpoints = CheckpointLog(checkpoint_path(settings), signing_key)
    try:
        return await AuditTrail(database, checkpoints).verify(checkpoint=False)
    finally:
        await database.close()


def _settings_problems(error: ValidationError) -> str:
    """What is wrong with the settings, without echoing their values (they hold secrets)."""
    lines = []
    for problem in error.errors(include_url=False, include_input=False):
        where = "PP_" + "_".join(str(part) for part in problem["loc"]).upper()
        text = problem["msg"].removeprefix("Value error, ")
        lines.append(text if where == "PP_" else f"{where}: {text}")
    return "; ".join(lines)


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: bad settings: {_settings_problems(error)}", file=sys.stderr)
        return 2
    try:
        return _dispatch(settings, args)
    except (DomainError, migrations.SchemaOutOfDateError, migrations.MigrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except CommandError as error:  # Alembic: unknown revision and the like
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ArgumentError, UnsupportedDatabaseError) as error:
        print(f"error: bad PP_DATABASE_URL: {error}", file=sys.stderr)
        return 2
    except (DBAPIError, ConnectionError, TimeoutError, socket.gaierror) as error:
        # Unreachable server, unknown host, missing database, bad credentials.
        reason = error.orig if isinstance(error, DBAPIError) else error
        url = _redacted(settings.database_url)
        print(f"error: cannot use the database at {url}: {reason}", file=sys.stderr)
        return 1
    except OSError as error:  # an unwritable data directory, say
        print(f"error: {error}", file=sys.stderr)
        return 1


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.async_database_url
    run: Command | None = getattr(args, "run", None)
    if run is not None:
        return run(settings, args)
    if args.command == "db" and args.action in ("upgrade", "downgrade"):
        move = migrations.upgrade if args.action == "upgrade" else migrations.downgrade
        move(url, args.revision)
        have = asyncio.run(migrations.current_revision(url))
        print(f"database at {have or 'nothing (base)'}")
    elif args.command == "db":
        have = asyncio.run(migrations.current_revision(url))
        print(f"database at {have or 'nothing'}; code needs {migrations.head_revision()}")
    elif args.command == "audit":
        report = asyncio.run(_verify_audit(settings))
        print(f"audit chain {report.status.value}: {report.detail}")
        return 0 if report.intact else 1
    elif args.command == "user" and args.action == "bootstrap":
        print(asyncio.run(_bootstrap_admin(settings)))
    elif args.command == "user":
        password = sys.stdin.readline().rstrip("\r\n")
        print(asyncio.run(_create_user(settings, args, password)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
