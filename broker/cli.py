"""The ``broker`` command: certificates, password files, Mosquitto config, an embedded broker."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from broker import config
from broker.credentials import BrokerReloadError
from broker.mosquitto_process import BrokerStartError
from broker.ownership import MOSQUITTO_USER, SECRET_MODE, SHARED_MODE, broker_owner
from core.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]
DEFAULT_RUN_DIR = Path("data") / "broker"  # beside the demo's SQLite file


def register(commands: Any) -> None:
    """Add ``broker`` and its actions to the command line's sub-parsers."""
    broker = commands.add_parser("broker", help="the MQTT broker: TLS, passwords, config, embedded")
    actions = broker.add_subparsers(dest="action", required=True)

    certs = actions.add_parser("certs", help="issue a CA, a server and client certificates")
    certs.add_argument("--out", type=Path, required=True, help="directory for the files")
    certs.add_argument(
        "--host",
        action="append",
        help="repeatable: a name or IP the broker is reached at (default: localhost, 127.0.0.1)",
    )
    certs.add_argument("--client", action="append", default=[], help="repeatable: a client name")
    certs.add_argument("--days", type=int, help="validity of the server and client certificates")
    certs.add_argument("--force", action="store_true", help="replace an existing CA")
    _owner_flag(certs, "server.key")
    certs.set_defaults(run=_guarded(_certs))

    passwd = actions.add_parser("passwd", help="add a user to a password file (password on stdin)")
    passwd.add_argument("--file", type=Path, required=True, help="the Mosquitto password file")
    passwd.add_argument("--username", required=True)
    passwd.add_argument("--pid-file", type=Path, help="make this running Mosquitto reload")
    _owner_flag(passwd, "the password file")
    passwd.set_defaults(run=_guarded(_passwd))

    conf = actions.add_parser("conf", help="write mosquitto.conf and acl for a deployment")
    conf.add_argument("--out", type=Path, required=True, help="directory for the two files")
    conf.add_argument("--config-dir", type=PurePosixPath, default=config.PRODUCTION_CONFIG_DIR)
    conf.add_argument("--data-dir", type=PurePosixPath, default=config.PRODUCTION_DATA_DIR)
    tls = conf.add_mutually_exclusive_group()
    tls.add_argument("--certs-dir", type=PurePosixPath, default=config.PRODUCTION_CERTS_DIR)
    tls.add_argument("--no-tls", action="store_true", help="plain MQTT (inside a trusted network)")
    conf.add_argument("--port", type=int, default=config.PRODUCTION_PORT)
    conf.add_argument("--bind", default="0.0.0.0", help="listen address")
    conf.add_argument(
        "--server-username",
        action="append",
        help="repeatable: a server account (one per replica; default: server)",
    )
    _owner_flag(conf, "acl")
    conf.set_defaults(run=_guarded(_conf))

    run = actions.add_parser("run", help="run the embedded broker on loopback until Ctrl-C")
    run.add_argument("--dir", type=Path, default=DEFAULT_RUN_DIR, help="its files and data")
    run.add_argument("--port", type=int, default=0, help="default: a free port")
    run.add_argument("--prefer", choices=["mosquitto", "amqtt"], default="mosquitto")
    run.set_defaults(run=_guarded(_run))


def _owner_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--owner",
        metavar="USER[:GROUP]",
        help=f"who owns {what}, which Mosquitto reads after dropping root (default as root:"
        f" {MOSQUITTO_USER}, if that user exists)",
    )


def _hand_over(args: argparse.Namespace, path: Path, mode: int) -> None:
    owner = broker_owner(args.owner)
    if owner is None:
        os.chmod(path, mode)
        return
    owner.hand_over(path, mode)
    print(f"gave {path} to {owner.name} (mode {mode:o})")


def _guarded(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def guarded(settings: Settings, args: argparse.Namespace) -> int:
        try:
            return handler(settings, args)
        except (ValueError, OSError, BrokerReloadError, BrokerStartError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return guarded


def _certs(settings: Settings, args: argparse.Namespace) -> int:
    from broker.certs import DEFAULT_DAYS, make_certificates  # cryptography loads only here

    broker_owner(args.owner)  # an unknown owner is refused before anything is written
    paths = make_certificates(
        args.out,
        server_hosts=args.host or ("localhost", "127.0.0.1"),
        clients=args.client,
        days=args.days or DEFAULT_DAYS,
        force=args.force,
    )
    print(f"wrote ca.crt, ca.key, server.crt, server.key to {paths.directory}")
    _hand_over(args, paths.server_key, SECRET_MODE)  # ca.key stays the issuer's, and offline
    for name in paths.clients:
        print(f"wrote {name}.crt, {name}.key")
    print("keep ca.key offline; give clients ca.crt only")
    return 0


def _passwd(settings: Settings, args: argparse.Namespace) -> int:
    from broker.credentials import PasswordFile, reload_broker
    from core.passwords import MIN_PASSWORD_LENGTH, mosquitto_hash

    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        msg = f"the password (read from stdin) needs at least {MIN_PASSWORD_LENGTH} characters"
        raise ValueError(msg)
    broker_owner(args.owner)  # an unknown owner is refused before anything is written
    PasswordFile(args.file).set(args.username, mosquitto_hash(password))
    _hand_over(args, args.file, SECRET_MODE)  # before the reload, so the broker can read it
    if args.pid_file:
        reload_broker(args.pid_file)
    reloaded = " and reloaded the broker" if args.pid_file else ""
    print(f"set the password of {args.username} in {args.file}{reloaded}")
    return 0


def _conf(settings: Settings, args: argparse.Namespace) -> int:
    conf = config.render_deployment_conf(
        config_dir=args.config_dir,
        data_dir=args.data_dir,
        certs_dir=None if args.no_tls else args.certs_dir,
        port=args.port,
        bind_address=args.bind,
    )
    acl = config.render_acl(*(args.server_username or ()))
    broker_owner(args.owner)  # an unknown owner is refused before anything is written
    conf_path, acl_path = config.write_deployment_files(args.out, conf, acl)
    print(f"wrote {conf_path} and {acl_path}")
    os.chmod(conf_path, 0o644)  # read as root, before Mosquitto drops privileges
    _hand_over(args, acl_path, SHARED_MODE)
    return 0


def _run(settings: Settings, args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how this command ends
        asyncio.run(_serve(settings, args))
    return 0


async def _serve(settings: Settings, args: argparse.Namespace) -> None:
    from broker.credentials import PasswordFile
    from broker.launcher import embedded_broker

    # Ctrl-C ends the wait as SIGTERM does, so the broker shuts down on the normal path, not
    # from inside a cancellation. The handlers go in before anything is announced: a
    # process started from a non-interactive shell's background job inherits SIGINT
    # ignored, and a Ctrl-C sent as soon as the banner shows must still count.
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    username = settings.mqtt_username or config.DEFAULT_SERVER_USERNAME
    users, shown = {}, ""
    if settings.mqtt_password:
        users[username] = settings.mqtt_password
    elif username not in PasswordFile(args.dir / config.PASSWORD_FILE_NAME).usernames():
        users[username] = secrets.token_urlsafe(16)
        shown = f"created broker user {username} / {users[username]} (shown once)"
    async with embedded_broker(
        args.dir, users=users, prefer=args.prefer, port=args.port or None, server_username=username
    ) as broker:
        print(f"broker ({broker.kind}) listening on {broker.host}:{broker.port}", flush=True)
        if shown:
            print(shown, flush=True)
        await stop.wait()
