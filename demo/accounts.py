"""The demo's accounts: the first admin and its simulated stations, kept from run to run.

Station passwords live in a 0600 JSON file (device id → password, the format
``precisionpulse simulate --credentials`` reads). A station missing from the database is
registered again; one whose stored password no longer opens it (re-keyed on the Devices
page, a lost file) gets a new password. Disabled stations stay disabled and are not started.
The window's station is kept the same way, and its password also alone in a 0600 file, so
the command that opens its window reads it from there (``--password-stdin < file``).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from core import station_accounts
from core.db.engine import Database
from core.errors import NotFoundError
from core.rbac import ADMIN
from core.services import device_configs, users
from core.services.actor import Actor

ADMIN_USERNAME = "admin"
STATIONS = ("press-01", "lathe-02", "oven-03")  # names a control room would recognise
# Registered but never simulated: the station a person opens a window on, beside the three
# (a window on one of them would fight the demo's own agent for its outbox and session).
WINDOW_STATION = "bench-04"
_DEMO = Actor(
    name="demo",
    permissions=frozenset({"devices:read", "devices:write", "config:write"}),
)


@dataclass(frozen=True)
class Stations:
    """The stations to start (id → MQTT password) and which got new credentials this run."""

    credentials: dict[str, str]
    renewed: tuple[str, ...]
    disabled: tuple[str, ...]
    window: bool = False  # the window's station is enabled and its password file written


async def ensure_admin(database: Database, password: str | None) -> str | None:
    """Create ``admin`` when nobody has an account yet; its password, or None if users exist."""
    async with database.session() as session:
        if await users.any_user(session):
            return None
        password = password or secrets.token_urlsafe(12)
        await users.bootstrap_user(
            session, username=ADMIN_USERNAME, password=password, roles=[ADMIN]
        )
    return password


async def reset_admin(database: Database, password: str | None) -> str:
    """Give ``admin`` a new password (``password`` or a generated one) and return it."""
    async with database.session() as session:
        admin = await users.find_by_username(session, ADMIN_USERNAME)
        if admin is None:
            msg = f"no user named '{ADMIN_USERNAME}' to reset"
            raise NotFoundError(msg)
        password = password or secrets.token_urlsafe(12)
        await users.update_user(
            session,
            actor=users.console_actor("demo"),  # only an Admin may reset an Admin
            user_id=admin.id,
            password=password,
            is_active=True,
        )
    return password


# The simulated source's channels (desktop.agent.sources.Simulated), shown with units.
UNITS = {"temp": "°C", "parts": "pcs"}


async def ensure_stations(
    database: Database, credentials_file: Path, window_password_file: Path
) -> Stations:
    """Register or re-key the stations as needed (core.station_accounts), keeping the file."""
    await asyncio.to_thread(_drop_if_unreadable, credentials_file)
    done = await station_accounts.ensure_stations(
        database, [*STATIONS, WINDOW_STATION], credentials_file, actor=_DEMO, name=_name
    )
    if done.registered:
        async with database.session() as session:
            for device_id in done.registered:
                await device_configs.update_desired(
                    session, actor=_DEMO, device_id=device_id, changes={"units": UNITS}
                )
    stored = await asyncio.to_thread(station_accounts.read_credentials, credentials_file)
    window = WINDOW_STATION not in done.disabled
    if window:
        await asyncio.to_thread(_save, window_password_file, f"{stored[WINDOW_STATION]}\n")
    started = {d: stored[d] for d in STATIONS if d not in done.disabled}
    renewed = tuple(d for d in (*STATIONS, WINDOW_STATION) if d in done.registered + done.rekeyed)
    return Stations(started, renewed, done.disabled, window)


def _name(device_id: str) -> str:
    kind = "station window" if device_id == WINDOW_STATION else "simulated"
    return f"{device_id} ({kind})"


def _drop_if_unreadable(path: Path) -> None:
    """An unreadable file is as good as none: every station then gets a new password."""
    try:
        station_accounts.read_credentials(path)
    except ValueError:
        path.unlink()


def _save(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only (it holds a broker password)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temp, path)
