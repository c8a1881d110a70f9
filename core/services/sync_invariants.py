"""The server's invariants, kept for a station's edit as the web keeps them.

Checked on the changes that would win, before anything is written:
- a new row comes whole (``REQUIRED``; other fields take ``DEFAULTS``);
- a new link joins rows that exist or come with the edit, a grant a live role, a
  permission from the catalogue;
- built-in roles and their grants are fixed;
- a username or a role name belongs to one row (deleted ones included);
- the configuration with the station's overrides is one a station runs;
- an active Admin remains (``users.NO_ADMIN_LEFT``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Role
from core.errors import DomainError
from core.protocol.station_config import ConfigError, check_settings
from core.protocol.sync import FieldChange
from core.services import device_configs, roles, sync_log, users
from core.services.sync_authority import ADMIN_ROLE_ID
from core.services.sync_edits import Checked
from core.sync.entities import KEY_SEPARATOR

# Fields a new row must be given; the rest take their defaults, logged with the edit.
REQUIRED = {
    "user": ("username", "password_hash"),
    "role": ("name",),
    "user_role": ("deleted",),
    "role_permission": ("deleted",),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "user": {"display_name": "", "is_active": True, "deleted": False},
    "role": {"description": "", "builtin": False, "deleted": False},
}
# The owner of each synced table a station's edit may write (the configuration is changed
# through device_configs.update_desired instead).
OWNERS = {"user": users, "user_role": users, "role": roles, "role_permission": roles}
Rows = dict[tuple[str, str], Any]  # (entity, key) -> its row, None when the edit makes it


class Refused(Exception):
    """The edit breaks one of the server's invariants; the reason says which."""


@dataclass(frozen=True)
class Merged:
    """A checked change and what the log held for its field before it."""

    checked: Checked
    current: sync_log.Entry | None

    @property
    def change(self) -> FieldChange:
        """The station's change (at the stamp the server uses)."""
        return self.checked.change

    @property
    def wins(self) -> bool:
        """Whether its stamp is higher than the field's current one."""
        return self.current is None or self.change.stamp > self.current.change.stamp

    @property
    def row(self) -> tuple[str, str]:
        """The row it changes: (entity, key)."""
        return self.change.entity, self.change.key


async def rows_of(session: AsyncSession, merged: Iterable[Merged]) -> Rows:
    """The rows the edit changes, tombstoned or not, but configurations."""
    rows: Rows = {}
    for m in merged:
        if m.change.entity in OWNERS and m.row not in rows:
            owner = OWNERS[m.change.entity]
            rows[m.row] = await owner.synced_row(session, m.change.entity, m.checked.key)
    return rows


async def keep(session: AsyncSession, merged: list[Merged], rows: Rows, device_id: str) -> None:
    """``Refused`` if applying the winning changes would break an invariant."""
    for (entity, key), row in rows.items():
        given = {m.change.field for m in merged if m.row == (entity, key)}
        missing = [name for name in REQUIRED[entity] if name not in given]
        if row is None and missing:
            msg = f"incomplete: a new {entity} needs {', '.join(missing)}"
            raise Refused(msg)
    for m in merged:
        if m.change.entity in ("role", "role_permission"):
            await _not_builtin(session, m, rows)
        if m.change.entity in ("user_role", "role_permission") and rows[m.row] is None:
            await _ends_exist(session, m, rows)
        if m.wins:
            await _unique(session, m)
    await _config_runs(session, merged, device_id)
    await _keeps_an_admin(session, merged, rows)


async def _unique(session: AsyncSession, m: Merged) -> None:
    try:
        if m.row[0] == "user" and m.change.field == "username":
            await users.check_username_free(session, m.change.value, other_than=m.checked.key["id"])
        elif m.row[0] == "role" and m.change.field == "name":
            await roles.check_name_free(session, m.change.value, m.checked.key["id"])
    except DomainError as error:
        raise Refused(error.message) from error


async def _not_builtin(session: AsyncSession, m: Merged, rows: Rows) -> None:
    role_id = m.checked.key["id" if m.change.entity == "role" else "role_id"]
    role = rows.get(("role", str(role_id)))
    if role is None:
        role = await roles.synced_row(session, "role", {"id": role_id})
    if isinstance(role, Role) and role.builtin:
        msg = f"the built-in role '{role.name}' is fixed: it cannot be changed"
        raise Refused(msg)


async def _ends_exist(session: AsyncSession, m: Merged, rows: Rows) -> None:
    """A new link joins rows that exist or come with the edit; a grant, live ones."""
    for column, value in m.checked.key.items():
        entity, key = column.removesuffix("_id"), str(value)
        if entity == "permission":
            if await sync_log.current(session, "permission", key, "name") is None:
                raise Refused("no such permission")
            continue
        if (entity, key) in rows:
            continue  # it comes with this edit (or is changed by it too: it exists)
        found = await OWNERS[entity].synced_row(session, entity, {"id": value})
        if found is None or (found.deleted and m.change.value is False):
            msg = f"no such {entity}: deleted, or never synced to the server"
            raise Refused(msg)


async def _config_runs(session: AsyncSession, merged: Iterable[Merged], device_id: str) -> None:
    """``Refused`` unless the configuration with the winning overrides can run."""
    overrides = {m.checked.setting: m.change.value for m in merged if m.checked.setting and m.wins}
    if not overrides:
        return
    desired = await device_configs.desired(session, device_id=device_id)
    settings = {**(desired.settings if desired else {}), **overrides}
    try:
        check_settings({k: v for k, v in settings.items() if v is not None})
    except ConfigError as error:
        raise Refused(str(error)) from error


async def _keeps_an_admin(session: AsyncSession, merged: list[Merged], rows: Rows) -> None:
    """``Refused`` if the winners would leave no active Admin."""
    won = {
        (m.change.entity, m.change.key, m.change.field): m.change.value for m in merged if m.wins
    }
    admin_link = f"{KEY_SEPARATOR}{ADMIN_ROLE_ID}"
    people = {k for (e, k, f) in won if e == "user" and f in ("is_active", "deleted")}
    people |= {
        k.removesuffix(admin_link)
        for (e, k, _) in won
        if e == "user_role" and k.endswith(admin_link)
    }
    before = after = 0
    for key in people:
        now, then = await _admin_now_and_then(session, key, won, rows)
        before, after = before + now, after + then
    if after < before and await users.count_active_admins(session) - before + after <= 0:
        raise Refused(users.NO_ADMIN_LEFT)


async def _admin_now_and_then(
    session: AsyncSession, key: str, won: dict[tuple[str, str, str], Any], rows: Rows
) -> tuple[bool, bool]:
    """Whether user ``key`` is an active Admin now, and would be with the winners applied."""
    user_id = uuid.UUID(key)
    if ("user", key) in rows:
        user = rows[("user", key)]  # None: the edit makes it
    else:
        user = await users.synced_row(session, "user", {"id": user_id})
    link = await users.synced_row(
        session, "user_role", {"user_id": user_id, "role_id": uuid.UUID(ADMIN_ROLE_ID)}
    )
    active = user.is_active if user is not None else DEFAULTS["user"]["is_active"]
    deleted = user.deleted if user is not None else DEFAULTS["user"]["deleted"]
    live = link is not None and not link.deleted
    now = user is not None and live and active and not deleted
    active = won.get(("user", key, "is_active"), active)
    deleted = won.get(("user", key, "deleted"), deleted)
    live = not won.get(("user_role", f"{key}{KEY_SEPARATOR}{ADMIN_ROLE_ID}", "deleted"), not live)
    return now, bool(live and active and not deleted)
