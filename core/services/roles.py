"""Roles and their permissions, including the built-in Admin and Viewer.

Nobody grants a permission they do not hold: a role is created, or given more, only with
permissions its editor holds (taking them away needs no such thing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import hlc
from core.db.models import Permission, Role, RolePermission
from core.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from core.rbac import BUILTIN_ROLES, PERMISSIONS, builtin_id
from core.services import audit, links, users
from core.services.actor import Actor


async def ensure_builtins(session: AsyncSession) -> None:
    """Create or repair the permission catalogue and the built-in roles (idempotent)."""
    by_name = {p.name: p for p in await session.scalars(select(Permission))}
    for name, description in PERMISSIONS.items():
        permission = by_name.get(name)
        if permission is None:
            permission = Permission(id=builtin_id("permission", name), name=name)
            session.add(permission)
            by_name[name] = permission
        if permission.deleted or permission.description != description:
            permission.deleted, permission.description = False, description
            permission.updated_at = hlc.now()
        permission.updated_at = permission.updated_at or hlc.now()
    await session.flush()
    for name, (description, granted) in BUILTIN_ROLES.items():
        role = await session.scalar(select(Role).where(Role.name == name))
        if role is None:
            role = Role(id=builtin_id("role", name), name=name, updated_at=hlc.now())
            session.add(role)
        role.description, role.builtin, role.deleted = description, True, False
        await session.flush()
        await _set_grants(session, role, {by_name[p].id for p in granted})


async def _set_grants(session: AsyncSession, role: Role, wanted: set[uuid.UUID]) -> None:
    await links.reconcile(
        session,
        owner=RolePermission.role_id,
        owner_id=role.id,
        other=RolePermission.permission_id,
        wanted=wanted,
    )


async def list_permissions(session: AsyncSession) -> list[Permission]:
    """Every live permission, by name."""
    query = select(Permission).where(~Permission.deleted).order_by(Permission.name)
    return list(await session.scalars(query))


async def permissions_of(session: AsyncSession, role_id: uuid.UUID) -> list[str]:
    """The names of the permissions a role grants."""
    query = (
        select(Permission.name)
        .join(RolePermission, RolePermission.permission_id == Permission.id)
        .where(RolePermission.role_id == role_id, ~RolePermission.deleted, ~Permission.deleted)
        .order_by(Permission.name)
    )
    return list(await session.scalars(query))


async def permissions_by_role(session: AsyncSession) -> dict[uuid.UUID, list[str]]:
    """The names of the permissions every role grants, by role id, in one query (for lists)."""
    query = (
        select(RolePermission.role_id, Permission.name)
        .join(Permission, RolePermission.permission_id == Permission.id)
        .where(~RolePermission.deleted, ~Permission.deleted)
        .order_by(Permission.name)
    )
    granted: dict[uuid.UUID, list[str]] = {}
    for role_id, name in await session.execute(query):
        granted.setdefault(role_id, []).append(name)
    return granted


async def list_roles(session: AsyncSession) -> list[Role]:
    """Every live role: built-in ones first, then by name."""
    query = select(Role).where(~Role.deleted).order_by(Role.builtin.desc(), Role.name)
    return list(await session.scalars(query))


async def count_live(session: AsyncSession) -> int:
    """How many roles exist (not deleted)."""
    return await session.scalar(select(func.count()).select_from(Role).where(~Role.deleted)) or 0


async def get_role(session: AsyncSession, role_id: uuid.UUID) -> Role:
    """A live role, or NotFoundError."""
    role = await session.get(Role, role_id)
    if role is None or role.deleted:
        msg = f"no role with id {role_id}"
        raise NotFoundError(msg)
    return role


async def _permission_ids(session: AsyncSession, names: list[str]) -> set[uuid.UUID]:
    unknown = sorted(set(names) - set(PERMISSIONS))
    if unknown:
        msg = f"unknown permission(s): {', '.join(unknown)}"
        raise InvalidError(msg, field="permissions")
    query = select(Permission.id).where(Permission.name.in_(names), ~Permission.deleted)
    return set(await session.scalars(query))


async def _snapshot(session: AsyncSession, role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "description": role.description,
        "permissions": await permissions_of(session, role.id),
    }


async def check_name_free(session: AsyncSession, name: str, except_id: uuid.UUID | None) -> None:
    """ConflictError if a role other than ``except_id`` has the name (deleted ones too)."""
    clash = await session.scalar(select(Role).where(Role.name == name))
    if clash is not None and clash.id != except_id:
        if clash.deleted:
            msg = f"role name '{name}' belonged to a deleted role; choose another"
        else:
            msg = f"a role named '{name}' already exists"
        raise ConflictError(msg, field="name")


async def create_role(
    session: AsyncSession, *, actor: Actor, name: str, description: str, permissions: list[str]
) -> Role:
    """A new custom role."""
    actor.require("roles:manage")
    name = name.strip()
    if not name:
        raise InvalidError("a role needs a name", field="name")
    await check_name_free(session, name, None)
    ids = await _permission_ids(session, permissions)
    actor.require_to_grant({name: permissions})
    role = Role(name=name, description=description, builtin=False, updated_at=hlc.now())
    session.add(role)
    await session.flush()
    await _set_grants(session, role, ids)
    await session.flush()
    after = await _snapshot(session, role)
    await audit.record(
        session,
        actor=actor.name,
        action="role.create",
        target_type="role",
        target_id=str(role.id),
        after=after,
    )
    return role


async def update_role(
    session: AsyncSession,
    *,
    actor: Actor,
    role_id: uuid.UUID,
    name: str | None = None,
    description: str | None = None,
    permissions: list[str] | None = None,
) -> Role:
    """Rename, describe or re-grant a custom role; built-in roles are fixed."""
    actor.require("roles:manage")
    role = await get_role(session, role_id)
    if role.builtin:
        msg = f"the built-in role '{role.name}' cannot be changed; create a custom role instead"
        raise ForbiddenError(msg)
    before = await _snapshot(session, role)
    if name is not None:
        name = name.strip()
        if not name:
            raise InvalidError("a role needs a name", field="name")
        await check_name_free(session, name, role.id)
        role.name = name
    if description is not None:
        role.description = description
    if permissions is not None:
        ids = await _permission_ids(session, permissions)
        actor.require_to_grant({role.name: set(permissions) - set(before["permissions"])})
        await _set_grants(session, role, ids)
    role.updated_at = hlc.now()
    await session.flush()
    after = await _snapshot(session, role)
    await audit.record(
        session,
        actor=actor.name,
        action="role.update",
        target_type="role",
        target_id=str(role.id),
        before=before,
        after=after,
    )
    return role


async def delete_role(session: AsyncSession, *, actor: Actor, role_id: uuid.UUID) -> None:
    """Tombstone a custom role and every grant of it."""
    actor.require("roles:manage")
    role = await get_role(session, role_id)
    if role.builtin:
        msg = f"the built-in role '{role.name}' cannot be deleted"
        raise ForbiddenError(msg)
    before = await _snapshot(session, role)
    stamp = hlc.now()
    role.deleted, role.updated_at = True, stamp
    await users.withdraw_role(session, role_id=role.id, stamp=stamp)
    await _set_grants(session, role, set())
    await audit.record(
        session,
        actor=actor.name,
        action="role.delete",
        target_type="role",
        target_id=str(role.id),
        before=before,
    )


async def names(
    session: AsyncSession,
    *,
    role_ids: Iterable[uuid.UUID] = (),
    permission_ids: Iterable[uuid.UUID] = (),
) -> dict[uuid.UUID, tuple[str, bool]]:
    """(name, deleted) of each of these roles and permissions the tables hold, deleted included."""
    found: dict[uuid.UUID, tuple[str, bool]] = {}
    for model, ids in ((Role, set(role_ids)), (Permission, set(permission_ids))):
        if ids:
            query = select(model.id, model.name, model.deleted).where(model.id.in_(ids))
            found |= {row.id: (row.name, row.deleted) for row in await session.execute(query)}
    return found


async def ids_named_like(session: AsyncSession, pattern: str, *, limit: int) -> list[uuid.UUID]:
    """Ids of at most ``limit`` roles whose name matches ``pattern`` (ILIKE, ``\\`` escapes)."""
    query = select(Role.id).where(Role.name.ilike(pattern, escape="\\")).limit(limit)
    return list(await session.scalars(query))


# The sync inbox merges a station's accepted edit into these rows field by field
# (core.services.sync_inbox): it reads tombstoned rows too, and makes new ones whole.


async def synced_row(
    session: AsyncSession, entity: str, key: Mapping[str, Any]
) -> Role | RolePermission | None:
    """The ``role`` or ``role_permission`` row with this primary key, tombstoned or not."""
    model: type[Role] | type[RolePermission] = Role if entity == "role" else RolePermission
    return await session.get(model, dict(key))


def add_synced_row(session: AsyncSession, entity: str, values: Mapping[str, Any]) -> None:
    """Stage a new ``role`` or ``role_permission`` row: its key and every column it needs."""
    session.add(Role(**values) if entity == "role" else RolePermission(**values))
