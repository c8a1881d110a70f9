"""Replica content for tests: the server's side of sync, as pages of field changes.

``ServerLog`` stands in for the server's change log (``core.services.sync_log``): each
call changes some fields at one fresh server stamp and logs them in cursor order;
``page`` cuts the log into the ``ChangePage``s a station would receive. ``builtins`` logs
the permission catalogue and the built-in roles with their real ids (``core.rbac``).
"""

from __future__ import annotations

import uuid
from typing import Any

from core import edit_keys
from core.hlc import Clock
from core.passwords import hash_password
from core.protocol.sync import ChangePage, FieldChange
from core.rbac import BUILTIN_ROLES, PERMISSIONS, builtin_id
from desktop.agent.directory import PersonRecord
from desktop.agent.replica import Replica
from desktop.agent.sign_in import Person

DEVICE = "press-07"
PASSWORD = "correct horse battery"
PAGE_CHANGES = 500  # as core.services.sync_log.PAGE_CHANGES


def signed_in(record: PersonRecord | None, password: str = PASSWORD) -> Person:
    """The person a sign-in with ``password`` makes of ``record``: with their edit key."""
    assert record is not None
    return Person.of(record, edit_key=edit_keys.derive(password, record.user_id))


class ServerLog:
    """Field changes in cursor order, stamped by a clock named "server"."""

    def __init__(self, device_id: str = DEVICE, clock: Clock | None = None) -> None:
        self.device_id = device_id
        self.clock = clock or Clock("server")
        self.changes: list[FieldChange] = []
        self.roles: dict[str, uuid.UUID] = {}  # role name → id
        self.permissions: dict[str, uuid.UUID] = {}  # permission name → id

    @property
    def head(self) -> int:
        """The cursor of the last change logged."""
        return len(self.changes)

    def set(self, entity: str, key: object, **fields: Any) -> list[FieldChange]:
        """Change fields of one row at one fresh stamp; returns the changes logged."""
        stamp = self.clock.now()
        logged = [FieldChange(entity, str(key), f, v, stamp) for f, v in fields.items()]
        self.changes += logged
        return logged

    def page(self, after: int = 0, limit: int = PAGE_CHANGES) -> ChangePage:
        """The changes after cursor ``after`` (at most ``limit``), as the server sends them."""
        changes = tuple(self.changes[after : after + limit])
        return ChangePage(self.device_id, after, after + len(changes), self.head, changes)

    def pages(self, after: int = 0, limit: int = PAGE_CHANGES) -> list[ChangePage]:
        """Every page from ``after`` to the head."""
        pages = []
        while after < self.head:
            pages.append(self.page(after, limit))
            after = pages[-1].cursor
        return pages

    # -- rows ------------------------------------------------------------------------------

    def builtins(self) -> ServerLog:
        """The permission catalogue and the built-in roles (Admin, Viewer) with their grants."""
        for name, description in PERMISSIONS.items():
            self.permission(name, description, permission_id=builtin_id("permission", name))
        for name, (description, granted) in BUILTIN_ROLES.items():
            self.role(
                name, sorted(granted), description, builtin=True, role_id=builtin_id("role", name)
            )
        return self

    def permission(
        self, name: str, description: str = "", *, permission_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        """A live permission."""
        permission_id = permission_id or uuid.uuid4()
        self.set("permission", permission_id, name=name, description=description, deleted=False)
        self.permissions[name] = permission_id
        return permission_id

    def role(
        self,
        name: str,
        permissions: list[str],
        description: str = "",
        *,
        builtin: bool = False,
        role_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A live role granting ``permissions`` (names logged before)."""
        role_id = role_id or uuid.uuid4()
        self.set(
            "role", role_id, name=name, description=description, builtin=builtin, deleted=False
        )
        self.roles[name] = role_id
        for permission in permissions:
            self.grant_permission(name, permission)
        return role_id

    def grant_permission(self, role: str, permission: str, *, granted: bool = True) -> None:
        """Link (or, ``granted=False``, unlink) a permission to a role."""
        key = f"{self.roles[role]}:{self.permissions[permission]}"
        self.set("role_permission", key, deleted=not granted)

    def user(
        self,
        username: str,
        *,
        roles: tuple[str, ...] = ("Viewer",),
        password: str = PASSWORD,
        password_hash: str | None = None,
        display_name: str = "",
        is_active: bool = True,
        user_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """A user with these roles (``password_hash`` skips hashing, for many users)."""
        user_id = user_id or uuid.uuid4()
        self.set(
            "user",
            user_id,
            username=username,
            display_name=display_name,
            password_hash=password_hash or hash_password(password),
            is_active=is_active,
            deleted=False,
        )
        for role in roles:
            self.grant_role(user_id, role)
        return user_id

    def grant_role(self, user_id: uuid.UUID, role: str, *, granted: bool = True) -> None:
        """Link (or, ``granted=False``, unlink) a role to a user."""
        self.set("user_role", f"{user_id}:{self.roles[role]}", deleted=not granted)

    def disable(self, user_id: uuid.UUID) -> None:
        """The user may no longer sign in."""
        self.set("user", user_id, is_active=False)

    def delete(self, user_id: uuid.UUID) -> None:
        """Tombstone the user, as ``core.services.users.delete_user`` does."""
        self.set("user", user_id, deleted=True, is_active=False)

    def set_password(self, user_id: uuid.UUID, password: str) -> None:
        """A new password, set in the browser."""
        self.set("user", user_id, password_hash=hash_password(password))


def sync(replica: Replica, log: ServerLog) -> None:
    """Apply every page the replica lacks; each must follow on from its cursor."""
    for page in log.pages(replica.cursor):
        assert replica.apply_page(page)
