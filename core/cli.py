"""The ``precisionpulse`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from core.db import migrations
from core.db.engine import Database
from core.errors import DomainError
from core.rbac import BUILTIN_ROLES
from core.services import roles, users
from core.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="precisionpulse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server (API and UI)")
    serve.add_argument("--host", help="listen address (default: PP_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: PP_HTTP_PORT)")

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


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> str:
    await migrations.require_current_schema(settings.async_database_url)
    database = Database(settings.async_database_url)
    try:
        async with database.session() as session:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: bad settings: {error}", file=sys.stderr)
        return 2
    try:
        return _dispatch(settings, args)
    except (DomainError, migrations.SchemaOutOfDateError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _dispatch(settings: Settings, args: argparse.Namespace) -> int:
    url = settings.async_database_url
    if args.command == "serve":
        from webui.app import serve  # the UI stack loads only for the server

        serve(settings, host=args.host, port=args.port)
    elif args.command == "db" and args.action == "upgrade":
        migrations.upgrade(url, args.revision)
        print(f"database at {asyncio.run(migrations.current_revision(url))}")
    elif args.command == "db" and args.action == "downgrade":
        migrations.downgrade(url, args.revision)
        print(f"database at {asyncio.run(migrations.current_revision(url))}")
    elif args.command == "db":
        have = asyncio.run(migrations.current_revision(url))
        print(f"database at {have or 'nothing'}; code needs {migrations.head_revision()}")
    elif args.command == "user":
        password = sys.stdin.readline().rstrip("\n")
        print(asyncio.run(_create_user(settings, args, password)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
