"""Who made a station's edit and what they held, in the server's own records at its stamp.

A station's word on who its operator is and what they may do counts for nothing: the
server reads its change log as of the edit's stamp (``sync_log.value_at``), so an Admin
demoted at 10:00 still made their 09:59 edit as an Admin, and not their 10:01 one. The
person must exist under the username the edit gives, be active and not deleted then.
Permissions come from the roles they held (live links to live roles) and what those
roles granted, all at that stamp; the Admin role holds everything.

The records are those the server holds when the edit arrives. A revocation made offline at
another station that reaches the server later does not reach back: an edit it would have
refused, accepted before it came, stands (and is audited as accepted, naming its stamp).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.rbac import ADMIN, PERMISSIONS, builtin_id
from core.services import sync_log
from core.sync.entities import KEY_SEPARATOR

ADMIN_ROLE_ID = str(builtin_id("role", ADMIN))  # the same on every replica
_PERMISSION_NAMES = {str(builtin_id("permission", name)): name for name in PERMISSIONS}


@dataclass(frozen=True)
class Authority:
    """A person as the server's records had them at a stamp."""

    user_id: uuid.UUID
    username: str
    is_admin: bool
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        """Whether they held ``permission`` (an Admin holds them all)."""
        return self.is_admin or permission in self.permissions


class NotAuthorized(Exception):
    """The records do not show this person able to act at that stamp; the reason says why."""


async def at(session: AsyncSession, *, user_id: uuid.UUID, username: str, stamp: str) -> Authority:
    """The person ``user_id`` at ``stamp``, or ``NotAuthorized`` if they could not act then."""
    key = str(user_id)

    async def user(field: str) -> object:
        found = await sync_log.value_at(session, "user", key, field, stamp)
        return None if found is None else found.value

    known_as = await user("username")
    if known_as is None:
        msg = f"'{username}' is not a user in the server's records at the edit's time"
        raise NotAuthorized(msg)
    if known_as != username:
        msg = f"the edit names '{username}', but that account was '{known_as}' at its time"
        raise NotAuthorized(msg)
    if await user("deleted") is not False or await user("is_active") is not True:
        msg = f"'{username}' was disabled or deleted at the edit's time"
        raise NotAuthorized(msg)
    roles = await _live_links(session, "user_role", key, stamp)
    roles = [r for r in roles if await _live(session, "role", r, stamp)]
    granted: set[str] = set()
    for role in roles:
        for permission in await _live_links(session, "role_permission", role, stamp):
            if permission in _PERMISSION_NAMES:
                granted.add(_PERMISSION_NAMES[permission])
    return Authority(user_id, username, ADMIN_ROLE_ID in roles, frozenset(granted))


async def _live(session: AsyncSession, entity: str, key: str, stamp: str) -> bool:
    found = await sync_log.value_at(session, entity, key, "deleted", stamp)
    return found is not None and found.value is False


async def _live_links(session: AsyncSession, entity: str, owner: str, stamp: str) -> list[str]:
    """The other ends of ``owner``'s links that were live at ``stamp``."""
    prefix = f"{owner}{KEY_SEPARATOR}"
    return [
        key.removeprefix(prefix)
        for key in await sync_log.keys_of(session, entity, prefix=prefix)
        if await _live(session, entity, key, stamp)
    ]
