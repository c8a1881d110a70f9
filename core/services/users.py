"""User accounts: create, edit, disable, delete, their roles and their sign-in failures.

Nobody grants what they do not hold: giving a role takes every permission it grants, and
changing an account (its password above all, which is as good as signing in as it) takes
every permission the account holds. Only an Admin touches an Admin account or grants the
Admin role. Wherever a password is set here, the user's edit key is derived from it too
(``core.edit_keys``): the server's proof that a station's edit in their name knew it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import edit_keys, hlc
from core.db.models import Permission, Role, RolePermission, User, UserRole
from core.errors import ConflictError, InvalidError, NotFoundError
from core.passwords import MIN_PASSWORD_LENGTH, hash_password
from core.rbac import ADMIN, PERMISSIONS
from core.services import audit, links, sessions
from core.services.actor import Actor

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")


def check_username(username: str) -> str:
    """The username, or InvalidError saying what is wrong with it."""
    if not USERNAME.fullmatch(username):
        msg = "2 to 64 letters, digits or . _ @ -"
        raise InvalidError(f"username: {msg}", field="username")
    return username


def check_password(password: str) -> str:
    """The password, or InvalidError if it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        msg = f"A password needs at least {MIN_PASSWORD_LENGTH} characters"
        raise InvalidError(msg, field="password")
    return password


async def role_names(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    """The names of a user's live roles."""
    query = (
        select(Role.name)
        .join(UserRole, UserRole.role_id == Role.id)
        .where(UserRole.user_id == user_id, ~UserRole.deleted, ~Role.deleted)
        .order_by(Role.name)
    )
    return list(await session.scalars(query))


async def role_names_by_user(session: AsyncSession) -> dict[uuid.UUID, list[str]]:
    """The names of every user's live roles, by user id, in one query (for lists)."""
    query = (
        select(UserRole.user_id, Role.name)
        .join(Role, UserRole.role_id == Role.id)
        .where(~UserRole.deleted, ~Role.deleted)
        .order_by(Role.name)
    )
    named: dict[uuid.UUID, list[str]] = {}
    for user_id, name in await session.execute(query):
        named.setdefault(user_id, []).append(name)
    return named


async def permission_names(session: AsyncSession, user_id: uuid.UUID) -> frozenset[str]:
    """Everything a user's roles grant."""
    query = (
        select(Permission.name)
        .join(RolePermission, RolePermission.permission_id == Permission.id)
        .join(UserRole, UserRole.role_id == RolePermission.role_id)
        .join(Role, Role.id == UserRole.role_id)
        .where(
            UserRole.user_id == user_id,
            ~UserRole.deleted,
            ~RolePermission.deleted,
            ~Role.deleted,
            ~Permission.deleted,
        )
    )
    return frozenset(await session.scalars(query))


async def actor_for(
    session: AsyncSession, user: User, *, session_id: uuid.UUID | None = None
) -> Actor:
    """The acting identity of a signed-in user (in sign-in session ``session_id``)."""
    return Actor(
        name=user.username,
        user_id=user.id,
        permissions=await permission_names(session, user.id),
        roles=tuple(await role_names(session, user.id)),
        session_id=session_id,
    )


def console_actor(name: str) -> Actor:
    """Someone at the server's console (the CLI, the demo): they hold the database, so all."""
    return Actor(name=name, permissions=frozenset(PERMISSIONS), roles=(ADMIN,))


async def list_users(session: AsyncSession, *, actor: Actor) -> list[User]:
    """Every user that is not deleted, by username."""
    actor.require("users:manage")
    return list(await session.scalars(select(User).where(~User.deleted).order_by(User.username)))


async def any_user(session: AsyncSession) -> bool:
    """Whether any user exists at all, deleted ones included."""
    return await session.scalar(select(User.id).limit(1)) is not None


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """A user that is not deleted, or NotFoundError."""
    user = await session.get(User, user_id)
    if user is None or user.deleted:
        msg = f"no user with id {user_id}"
        raise NotFoundError(msg)
    return user


async def find_by_username(session: AsyncSession, username: str) -> User | None:
    """The live user with this username, if any."""
    return await session.scalar(select(User).where(User.username == username, ~User.deleted))


async def active_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user if they may sign in now: neither deleted nor disabled."""
    user = await session.get(User, user_id, populate_existing=True)
    return user if user is not None and not user.deleted and user.is_active else None


# Sign-in failures. ``failed_logins`` counts the attempts since the last success, each one
# counted *before* its password is checked: a burst of parallel guesses is counted as it
# arrives, not after its slow checks, so no more than the threshold are ever checked.


async def count_sign_in_attempt(
    session: AsyncSession, *, user_id: uuid.UUID, now: datetime
) -> int | None:
    """Count one more attempt unless the account is locked at ``now``: its number, or None.

    One UPDATE … RETURNING: the row lock (PostgreSQL) or write lock (SQLite) it takes lasts
    until the caller commits, so parallel attempts are numbered one after another, and an
    attempt waiting for the lock sees the lock an earlier one set.
    """
    counted = (
        update(User)
        .where(User.id == user_id, or_(User.locked_until.is_(None), User.locked_until <= now))
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    )
    return await session.scalar(counted)


async def lock_sign_in(session: AsyncSession, *, user_id: uuid.UUID, until: datetime) -> None:
    """Refuse the account's sign-ins until ``until`` (in the transaction that counted)."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(locked_until=until)
        .execution_options(synchronize_session=False)
    )


async def sign_in_locked_until(session: AsyncSession, user_id: uuid.UUID) -> datetime | None:
    """Until when the account's sign-ins are refused, if they are."""
    return await session.scalar(select(User.locked_until).where(User.id == user_id))


async def clear_sign_in_failures(session: AsyncSession, *, user_id: uuid.UUID) -> None:
    """A successful sign-in: the count starts again and any lock is lifted."""
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )


async def _role_ids(session: AsyncSession, names: list[str]) -> set[uuid.UUID]:
    found = {
        r.name: r.id
        for r in await session.scalars(select(Role).where(Role.name.in_(names), ~Role.deleted))
    }
    missing = sorted(set(names) - found.keys())
    if missing:
        msg = f"unknown role(s): {', '.join(missing)}"
        raise InvalidError(msg, field="roles")
    return set(found.values())


async def _set_roles(session: AsyncSession, user: User, wanted: set[uuid.UUID]) -> None:
    await links.reconcile(
        session, owner=UserRole.user_id, owner_id=user.id, other=UserRole.role_id, wanted=wanted
    )


async def withdraw_role(session: AsyncSession, *, role_id: uuid.UUID, stamp: str) -> None:
    """Tombstone every grant of the role to a user, stamped ``stamp`` (the role is deleted)."""
    for row in await session.scalars(select(UserRole).where(UserRole.role_id == role_id)):
        row.deleted, row.updated_at = True, stamp


async def count_live(session: AsyncSession) -> int:
    """How many user accounts exist (not deleted)."""
    return await session.scalar(select(func.count()).select_from(User).where(~User.deleted)) or 0


async def snapshot(session: AsyncSession, user: User) -> dict[str, Any]:
    """What the audit log keeps of a user (never the password hash)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "is_active": user.is_active,
        "roles": await role_names(session, user.id),
    }


async def _grants(session: AsyncSession, role_ids: set[uuid.UUID]) -> dict[str, set[str]]:
    """What each role grants, by role name."""
    grants: dict[str, set[str]] = {
        name: set()
        for name in await session.scalars(select(Role.name).where(Role.id.in_(role_ids)))
    }
    query = (
        select(Role.name, Permission.name)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .join(Permission, Permission.id == RolePermission.permission_id)
        .where(Role.id.in_(role_ids), ~RolePermission.deleted, ~Permission.deleted)
    )
    for role, permission in await session.execute(query):
        grants[role].add(permission)
    return grants


async def _may_change(session: AsyncSession, actor: Actor, user: User) -> None:
    actor.require_to_change(
        user.username, await role_names(session, user.id), await permission_names(session, user.id)
    )


async def create_user(
    session: AsyncSession,
    *,
    actor: Actor,
    username: str,
    password: str,
    display_name: str = "",
    roles: list[str],
) -> User:
    """A new active user with the given roles."""
    actor.require("users:manage")
    check_username(username)
    check_password(password)
    await check_username_free(session, username)
    role_ids = await _role_ids(session, roles)
    actor.require_to_grant(await _grants(session, role_ids))
    user = User(id=uuid.uuid4(), username=username, display_name=display_name)
    await set_password(user, password)
    return await _added(session, actor=actor, user=user, role_ids=role_ids)


async def _added(
    session: AsyncSession, *, actor: Actor, user: User, role_ids: set[uuid.UUID]
) -> User:
    """``user``, stored new with these roles and its creation audited."""
    user.updated_at = hlc.now()
    session.add(user)
    await session.flush()
    await _set_roles(session, user, role_ids)
    await audit.record(
        session,
        actor=actor.name,
        action="user.create",
        target_type="user",
        target_id=str(user.id),
        after=await snapshot(session, user),
    )
    return user


async def known_roles(session: AsyncSession, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that name a live role, as spelled (exactly) in the roles table."""
    wanted = set(names)
    if not wanted:
        return []
    query = select(Role.name).where(Role.name.in_(wanted), ~Role.deleted).order_by(Role.name)
    return list(await session.scalars(query))


async def create_without_password(
    session: AsyncSession, *, actor: Actor, username: str, display_name: str, roles: list[str]
) -> User:
    """A new active user who signs in elsewhere (a provider): no password, so no station.

    An empty hash matches no password, here or at a station (``core.passwords``), until an
    Admin gives them one.
    """
    check_username(username)
    await check_username_free(session, username)
    user = User(id=uuid.uuid4(), username=username, display_name=display_name, password_hash="")
    return await _added(session, actor=actor, user=user, role_ids=await _role_ids(session, roles))


async def follow_provider(
    session: AsyncSession, *, actor: Actor, user: User, display_name: str, roles: list[str]
) -> None:
    """Give a provider's user the name and roles it says now (audited when they change).

    ConflictError (``NO_ADMIN_LEFT``) if that took the Admin role from the last active Admin.
    """
    before = await snapshot(session, user)
    if user.display_name != display_name:
        user.display_name, user.updated_at = display_name, hlc.now()
    await _set_roles(session, user, await _role_ids(session, roles))  # stamps what changes
    after = await snapshot(session, user)
    if after == before:
        return
    await _keep_an_admin(session)
    await audit.record(
        session,
        actor=actor.name,
        action="user.update",
        target_type="user",
        target_id=str(user.id),
        before=before,
        after=after,
    )


async def set_password(user: User, password: str) -> None:
    """Give ``user`` (whose id is set) this password: its hash, and the edit key it makes.

    Twice a password check's work (argon2, then argon2id for the key), in a worker thread:
    argon2 releases the GIL, and the server's event loop goes on meanwhile.
    """

    def work() -> tuple[str, str]:
        return hash_password(password), edit_keys.derive(password, user.id).hex()

    user.password_hash, user.edit_key = await asyncio.to_thread(work)


def store_edit_key(user: User, key: bytes | None) -> None:
    """Keep ``key`` as ``user``'s edit key (None: none on record, their edits are refused)."""
    user.edit_key = None if key is None else key.hex()


def edit_key(user: User) -> bytes | None:
    """``user``'s edit key on record, if any (never synced, never shown)."""
    return None if user.edit_key is None else bytes.fromhex(user.edit_key)


async def edit_key_of(session: AsyncSession, user_id: uuid.UUID) -> bytes | None:
    """The edit key on record for ``user_id``: None if they have none (or there is no such user)."""
    user = await session.get(User, user_id)
    return None if user is None else edit_key(user)


async def keep_edit_key(session: AsyncSession, *, user_id: uuid.UUID, key: bytes | None) -> None:
    """Keep ``key`` as the edit key of ``user_id`` (a station set their password)."""
    user = await session.get(User, user_id)
    if user is not None:
        store_edit_key(user, key)


async def check_username_free(
    session: AsyncSession, username: str, *, other_than: uuid.UUID | None = None
) -> None:
    """ConflictError if a user (deleted ones too: names are unique) other than one has it."""
    holder = await session.scalar(select(User.id).where(User.username == username))
    if holder is not None and holder != other_than:
        msg = f"a user named '{username}' already exists"
        raise ConflictError(msg, field="username")


async def count_active_admins(session: AsyncSession) -> int:
    """How many users hold the Admin role, active and not deleted (there is always one)."""
    query = (
        select(func.count(func.distinct(User.id)))
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Role.name == ADMIN, ~UserRole.deleted, User.is_active, ~User.deleted)
    )
    return int(await session.scalar(query) or 0)


async def update_user(
    session: AsyncSession,
    *,
    actor: Actor,
    user_id: uuid.UUID,
    display_name: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
    roles: list[str] | None = None,
) -> User:
    """Change a user's name, roles, password or whether they may sign in.

    A new password ends every sign-in session of the user but the actor's own; disabling
    ends them all, for good (enabling again does not bring them back).
    """
    actor.require("users:manage")
    user = await get_user(session, user_id)
    await _may_change(session, actor, user)
    before = await snapshot(session, user)
    if display_name is not None:
        user.display_name = display_name
    if password is not None:
        await set_password(user, check_password(password))
        user.failed_logins, user.locked_until = 0, None
    if is_active is not None:
        user.is_active = is_active
    if roles is not None:
        role_ids = await _role_ids(session, roles)
        actor.require_to_grant(await _grants(session, role_ids))
        await _set_roles(session, user, role_ids)
    user.updated_at = hlc.now()
    await session.flush()
    await _keep_an_admin(session)
    if is_active is False:
        await sessions.end_all_of(session, user_id=user.id, reason="disabled", actor=actor.name)
    elif password is not None:
        await sessions.end_all_of(
            session,
            user_id=user.id,
            reason="password_changed",
            actor=actor.name,
            keep=actor.session_id,
        )
    after = await snapshot(session, user)
    action = "user.password" if password is not None and after == before else "user.update"
    await audit.record(
        session,
        actor=actor.name,
        action=action,
        target_type="user",
        target_id=str(user.id),
        before=before,
        after=after,
    )
    return user


async def delete_user(session: AsyncSession, *, actor: Actor, user_id: uuid.UUID) -> None:
    """Tombstone a user; their sign-ins stop working at once."""
    actor.require("users:manage")
    user = await get_user(session, user_id)
    await _may_change(session, actor, user)
    before = await snapshot(session, user)
    user.deleted, user.is_active, user.updated_at = True, False, hlc.now()
    await session.flush()
    await _keep_an_admin(session)
    await sessions.end_all_of(session, user_id=user.id, reason="deleted", actor=actor.name)
    await audit.record(
        session,
        actor=actor.name,
        action="user.delete",
        target_type="user",
        target_id=str(user.id),
        before=before,
    )


NO_ADMIN_LEFT = "this would leave no active Admin: nobody could manage the system any more"


async def _keep_an_admin(session: AsyncSession) -> None:
    if await count_active_admins(session) == 0:
        raise ConflictError(NO_ADMIN_LEFT)


# The sync inbox merges a station's accepted edit into these rows field by field
# (core.services.sync_inbox): it reads tombstoned rows too, and makes new ones whole.


async def synced_row(
    session: AsyncSession, entity: str, key: Mapping[str, Any]
) -> User | UserRole | None:
    """The ``user`` or ``user_role`` row with this primary key, tombstoned or not."""
    model: type[User] | type[UserRole] = User if entity == "user" else UserRole
    return await session.get(model, dict(key))


def add_synced_row(session: AsyncSession, entity: str, values: Mapping[str, Any]) -> None:
    """Stage a new ``user`` or ``user_role`` row: its key and every column it needs."""
    session.add(User(**values) if entity == "user" else UserRole(**values))


async def bootstrap_user(
    session: AsyncSession, *, username: str, password: str, roles: list[str], display_name: str = ""
) -> User:
    """Create a user from the shell, where no signed-in actor exists yet."""
    return await create_user(
        session,
        actor=console_actor("cli"),
        username=username,
        password=password,
        display_name=display_name,
        roles=roles,
    )


async def usernames(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, bool]]:
    """(username, deleted) of each of these users the table holds, deleted ones included."""
    wanted = set(user_ids)
    if not wanted:
        return {}
    query = select(User.id, User.username, User.deleted).where(User.id.in_(wanted))
    return {row.id: (row.username, row.deleted) for row in await session.execute(query)}


async def by_ids_or_usernames(
    session: AsyncSession, *, ids: Iterable[uuid.UUID], usernames: Iterable[str]
) -> dict[uuid.UUID, tuple[str, bool]]:
    """(username, deleted) of every user with one of these ids or usernames, in one query."""
    wanted_ids, wanted_names = set(ids), set(usernames)
    if not wanted_ids and not wanted_names:
        return {}
    query = select(User.id, User.username, User.deleted).where(
        or_(User.id.in_(wanted_ids), User.username.in_(wanted_names))
    )
    return {row.id: (row.username, row.deleted) for row in await session.execute(query)}


async def every_username(session: AsyncSession) -> list[str]:
    """Every username, sorted, deleted users' too (the people a log's filter may name)."""
    return list(await session.scalars(select(User.username).order_by(User.username)))


async def ids_named_like(session: AsyncSession, pattern: str, *, limit: int) -> list[uuid.UUID]:
    """Ids of users whose username, then those whose display name, match ``pattern``.

    ``pattern`` is a case-insensitive LIKE pattern escaped with ``\\``; at most ``limit``
    ids come from each of the two names.
    """
    found: list[uuid.UUID] = []
    for column in (User.username, User.display_name):
        query = select(User.id).where(column.ilike(pattern, escape="\\")).limit(limit)
        found += await session.scalars(query)
    return found
