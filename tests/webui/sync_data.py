"""A fleet in every sync state and a conflict log of every kind, made through the owner modules.

press-07 is 37 changes behind with 2 edits waiting and 2 conflicts; lathe-1 is up to date;
kiln-3 never synced. The log holds, newest last: olga's display name (kept on the server,
lost at press-07), olga's password (both hashes real), olga's Admin role (taken away at
lathe-1, given back on the server) and press-07's interval setting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from core.db.engine import Database
from core.hlc import Stamp, wall_time
from core.passwords import hash_password
from core.protocol.sync import FieldChange
from core.rbac import ADMIN, PERMISSIONS, builtin_id
from core.services import devices, roles, sync_conflicts, sync_log, sync_peers, users
from core.services.actor import Actor

SHELL = Actor(name="shell", permissions=frozenset(PERMISSIONS), roles=(ADMIN,))
BEHIND = 37  # press-07's lag
FILLER = 40  # changes logged so press-07 can be BEHIND of them behind


@dataclass(frozen=True)
class Seeded:
    """What the pages and the API should show."""

    head: int
    olga_id: str
    hashes: tuple[str, str]  # the kept and the lost password hash: never to be shown
    synced_at: datetime  # press-07's last sync
    kept_name_at: datetime  # when the kept display name was made
    lost_name_at: datetime


def _stamp(minutes_ago: float, node: str) -> str:
    return str(Stamp(int((time.time() - minutes_ago * 60) * 1000), 0, node))


async def seed(database: Database) -> Seeded:
    """The fleet and the conflicts described above, committed."""
    async with database.session() as session:
        for device_id in ("press-07", "lathe-1", "kiln-3"):
            await devices.create_device(session, actor=SHELL, device_id=device_id)
        olga = await users.bootstrap_user(
            session, username="olga", password="olga-password-1", roles=["Viewer"]
        )
        await roles.create_role(
            session, actor=SHELL, name="Operators", description="", permissions=["devices:read"]
        )
        olga_key = str(olga.id)
        filler = [
            FieldChange("user", olga_key, "display_name", f"Olga {i}", _stamp(30, "server"))
            for i in range(FILLER)
        ]
        sync_log.record(session, filler, origin="server", actor="shell")
        kept_name = FieldChange("user", olga_key, "display_name", "Olga K.", _stamp(5, "server"))
        sync_log.record(session, [kept_name], origin="server", actor="ada")
    # Every logged change sequenced here: a server's sync wire, sweeping, finds none to add.
    async with database.session() as session:
        head = await sync_log.sequence(session)
    assert head >= BEHIND

    lost_name = FieldChange("user", olga_key, "display_name", "Olga", _stamp(6, "press-07"))
    hashes = (hash_password("kept-password-1"), hash_password("lost-password-1"))
    kept_hash = FieldChange("user", olga_key, "password_hash", hashes[0], _stamp(4, "server"))
    lost_hash = FieldChange("user", olga_key, "password_hash", hashes[1], _stamp(4.5, "press-07"))
    admin_link = f"{olga_key}:{builtin_id('role', ADMIN)}"
    kept_link = FieldChange("user_role", admin_link, "deleted", False, _stamp(3, "server"))
    lost_link = FieldChange("user_role", admin_link, "deleted", True, _stamp(3.5, "lathe-1"))
    kept_set = FieldChange(
        "device_config", "press-07", "desired.interval_s", 2.5, _stamp(2, "server")
    )
    lost_set = FieldChange(
        "device_config", "press-07", "desired.interval_s", 1, _stamp(2.5, "press-07")
    )
    synced_at = wall_time(_stamp(1, "server"))
    async with database.session() as session:
        sync_conflicts.record(
            session,
            kept=kept_name,
            lost=lost_name,
            lost_origin="press-07",
            lost_actor="olga",
            device_id="press-07",
        )
        sync_conflicts.record(
            session,
            kept=kept_hash,
            lost=lost_hash,
            lost_origin="press-07",
            lost_actor="olga",
            device_id="press-07",
        )
        sync_conflicts.record(
            session,
            kept=kept_link,
            lost=lost_link,
            lost_origin="lathe-1",
            lost_actor="ada",
            device_id="lathe-1",
        )
        sync_conflicts.record(session, kept=kept_set, lost=lost_set, lost_origin="press-07")
        await sync_peers.note_contact(
            session, device_id="press-07", cursor=head - BEHIND, pending=2, now=synced_at
        )
        await sync_peers.note_answers(
            session, device_id="press-07", accepted=5, refused=1, conflicts=2
        )
        await sync_peers.note_contact(session, device_id="lathe-1", cursor=head, pending=0)
    return Seeded(
        head=head,
        olga_id=olga_key,
        hashes=hashes,
        synced_at=synced_at,
        kept_name_at=wall_time(kept_name.stamp),
        lost_name_at=wall_time(lost_name.stamp),
    )
