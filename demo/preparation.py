"""Before the demo serves: its files, roles, admin, stations and broker users, and what it says."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.services.audit_checkpoints import keyed_database
from core.settings import Settings
from demo.accounts import (
    ADMIN_USERNAME,
    WINDOW_STATION,
    Stations,
    ensure_admin,
    ensure_stations,
    reset_admin,
)
from webui.app import prepare
from webui.backbone.accounts import BrokerAccounts


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo keeps everything: one data directory, as given on the command line."""

    root: Path

    @property
    def database(self) -> Path:
        """The SQLite file."""
        return self.root.resolve() / "precisionpulse.db"

    @property
    def broker(self) -> Path:
        """The embedded broker's config, password file and persistence."""
        return self.root.resolve() / "broker"

    @property
    def stations(self) -> Path:
        """The stations' outboxes."""
        return self.root.resolve() / "stations"

    @property
    def signing_key(self) -> Path:
        """The server's signing key; stations trust its public half beside it."""
        return self.root.resolve() / "server-signing-key.pem"

    @property
    def server_key(self) -> Path:
        """The signing key's public half, which stations trust (as given: it is printed)."""
        return self.root / "server-signing-key.pub.pem"

    @property
    def credentials(self) -> Path:
        """The stations' MQTT passwords (0600)."""
        return self.root.resolve() / "stations.json"

    @property
    def window_password(self) -> Path:
        """The window station's MQTT password alone (0600; as given: it is printed)."""
        return self.root / f"{WINDOW_STATION}.password"


async def prepare_demo(
    settings: Settings, paths: DemoPaths, *, new_admin_password: bool, reset_command: str
) -> Stations:
    """Roles, the admin (made, reset or kept), the stations and the broker's password file.

    ``reset_command`` is how to run this demo again with a new admin password, as the
    person started it (``make run ARGS=…`` through make): the hint names exactly that.
    """
    await prepare(settings)  # the schema is current (migrated just before) and roles exist
    chosen = os.environ.get("PP_ADMIN_PASSWORD") or None
    database = keyed_database(settings)  # the admin and stations it makes are audited, keyed
    try:
        if new_admin_password:
            password: str | None = await reset_admin(database, chosen)
            admin = f"new password for {ADMIN_USERNAME}"
        else:
            password = await ensure_admin(database, chosen)
            admin = f"created the admin account: {ADMIN_USERNAME}"
        stations = await ensure_stations(database, paths.credentials, paths.window_password)
        assert settings.broker_password_file is not None and settings.mqtt_username is not None
        assert settings.mqtt_password is not None
        # Written before the broker starts, so the server's own sync at start finds nothing
        # to change and signals no broker that is not listening yet.
        server = (settings.mqtt_username, settings.mqtt_password)
        await BrokerAccounts(database, settings.broker_password_file, server=server).sync()
    finally:
        await database.close()

    print(f"PrecisionPulse demo: everything is kept in {paths.root}/ (delete it to start afresh)")
    if password is None:
        print(
            f"sign in as {ADMIN_USERNAME} with the password printed on the first run "
            f"(forgot it? stop the demo, then run: {reset_command})"
        )
    elif chosen is not None:
        print(f"{admin} / the password in PP_ADMIN_PASSWORD")
    else:
        print(f"{admin} / {password}   (shown only now: note it down)")
    names = ", ".join(stations.credentials) or "none"
    print(f"stations: {names} (their MQTT passwords are in {paths.root / paths.credentials.name})")
    if stations.renewed:
        print(f"registered or given new credentials now: {', '.join(stations.renewed)}")
    if stations.disabled:
        print(f"not started, disabled on the Devices page: {', '.join(stations.disabled)}")
    return stations
