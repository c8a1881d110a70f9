"""Edits made at the station by the person signed in there, checked as the server checks them.

Rules:
- Checked at the moment of acting against the person *as the replica sees them now*, not
  as they were at sign-in: someone disabled, deleted or demoted since may not act.
- The server's own rules (``core.services.users``, ``core.services.roles``): nobody grants
  what they do not hold, only an Admin touches an Admin's account or grants Admin, there
  is always an active Admin, built-in roles are fixed, usernames and passwords are checked
  alike.
- Accounts and roles are privileged fields: the server accepts a station's change to them
  only from an Admin, so here too only an Admin makes one (anyone else would only see it
  reverted). A person's own display name and password are theirs.
- Each function records one edit (pending until the server answers), signed with the edit
  key the person's sign-in derived, and returns it; refusals raise PermissionError or
  ValueError with a reason a person can read. A password set here travels with the new
  edit key it makes (``core.edit_keys``), so the server can check that person's later edits.
Blocking (password hashing and key derivation take ~0.2 s each): call these from a worker
thread.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from core import edit_keys
from core.errors import ForbiddenError, InvalidError
from core.passwords import hash_password, verify_password
from core.protocol.station_config import check_settings
from core.protocol.sync import Edit
from core.rbac import ADMIN
from core.services.actor import Actor
from core.services.users import check_password, check_username
from desktop.agent.directory import Directory, PersonRecord, RoleRecord
from desktop.agent.replica import Replica
from desktop.agent.sign_in import Person

MAX_DISPLAY_NAME = 128  # the users table's column
DEFAULT_OVERRIDES = ("interval_s",)  # core.settings.Settings.station_config_overrides' default
Change = tuple[str, str, str, Any]


@contextlib.contextmanager
def _readable() -> Iterator[None]:
    """The server's refusals as the built-in errors this module promises."""
    try:
        yield
    except ForbiddenError as error:
        raise PermissionError(error.message) from error
    except InvalidError as error:
        raise ValueError(error.message) from error


def _acting(replica: Replica, person: Person) -> tuple[Directory, PersonRecord]:
    """The replica now, and the person as it holds them now; PermissionError if gone."""
    directory = replica.directory()
    me = directory.person(person.user_id)
    if me is None or not me.is_active:
        msg = "your account is disabled or deleted: you cannot act any more"
        raise PermissionError(msg)
    return directory, me


def _author(me: PersonRecord, person: Person) -> Person:
    """Who signs the edit: the person as the replica holds them now, with their edit key."""
    return Person.of(me, edit_key=person.edit_key)


def _actor(me: PersonRecord) -> Actor:
    return Actor(name=me.username, user_id=me.user_id, permissions=me.permissions, roles=me.roles)


def _require(me: PersonRecord, permission: str, *, privileged: bool = False) -> None:
    if permission not in me.permissions:
        msg = f"this needs the permission {permission}, which you do not hold"
        raise PermissionError(msg)
    if privileged and not me.is_admin:
        msg = f"only an {ADMIN} can change accounts and roles at a station (the server decides)"
        raise PermissionError(msg)


def _target(directory: Directory, me: PersonRecord, user_id: uuid.UUID) -> PersonRecord:
    """A live user ``me`` may change (an Admin's account takes an Admin, etc.)."""
    target = directory.person(user_id)
    if target is None:
        raise ValueError("no such user: deleted, or not synced to this station yet")
    with _readable():
        _actor(me).require_to_change(target.username, target.roles, target.permissions)
    return target


def _roles_named(directory: Directory, names: Iterable[str]) -> list[RoleRecord]:
    known = {role.name: role for role in directory.roles()}
    missing = sorted(set(names) - known.keys())
    if missing:
        msg = f"unknown role(s): {', '.join(missing)}"
        raise ValueError(msg)
    return [known[name] for name in sorted(set(names))]


def _display_name(name: str) -> str:
    if len(name) > MAX_DISPLAY_NAME:
        msg = f"display name: at most {MAX_DISPLAY_NAME} characters"
        raise ValueError(msg)
    return name


def _keep_an_admin(directory: Directory, *, losing: uuid.UUID) -> None:
    """ValueError unless an active Admin other than ``losing`` remains."""
    if not any(p.is_admin and p.is_active and p.user_id != losing for p in directory.people()):
        msg = "this would leave no active Admin: nobody could manage the system any more"
        raise ValueError(msg)


def _link_changes(
    entity: str, owner: uuid.UUID, links: dict[str, bool], wanted: set[str]
) -> list[Change]:
    """Revive or add the wanted links, tombstone the others (only those that change)."""
    return [
        (entity, f"{owner}:{other}", "deleted", other not in wanted)
        for other in sorted(wanted | {k for k, live in links.items() if live})
        if links.get(other, False) != (other in wanted)
    ]


def edit_profile(replica: Replica, person: Person, display_name: str) -> Edit:
    """Change one's own display name (any active user)."""
    _, me = _acting(replica, person)
    change = ("user", str(me.user_id), "display_name", _display_name(display_name))
    return replica.record_edit(_author(me, person), [change])


def change_own_password(replica: Replica, person: Person, current: str, new: str) -> Edit:
    """Change one's own password, knowing the current one."""
    _, me = _acting(replica, person)
    with _readable():
        check_password(new)
    if not verify_password(current, me.password_hash or None):
        raise PermissionError("your current password is not right")
    change = ("user", str(me.user_id), "password_hash", hash_password(new))
    keys = {me.user_id: edit_keys.derive(new, me.user_id)}
    return replica.record_edit(_author(me, person), [change], keys=keys)


def create_user(
    replica: Replica,
    person: Person,
    username: str,
    password: str,
    display_name: str = "",
    roles: Iterable[str] = (),
) -> Edit:
    """A new, active user with the given roles (by name)."""
    directory, me = _acting(replica, person)
    _require(me, "users:manage", privileged=True)
    with _readable():
        check_username(username)
        check_password(password)
    if directory.username_taken(username):
        msg = f"a user named '{username}' already exists"
        raise ValueError(msg)
    granted = _roles_named(directory, roles)
    with _readable():
        _actor(me).require_to_grant({role.name: role.permissions for role in granted})
    user_id = uuid.uuid4()
    key = str(user_id)
    changes: list[Change] = [
        ("user", key, "username", username),
        ("user", key, "display_name", _display_name(display_name)),
        ("user", key, "password_hash", hash_password(password)),
        ("user", key, "is_active", True),
        ("user", key, "deleted", False),
        *(("user_role", f"{key}:{role.id}", "deleted", False) for role in granted),
    ]
    keys = {user_id: edit_keys.derive(password, user_id)}
    return replica.record_edit(_author(me, person), changes, keys=keys)


def set_active(replica: Replica, person: Person, user_id: uuid.UUID, active: bool) -> Edit:
    """Enable or disable a user's sign-in."""
    directory, me = _acting(replica, person)
    _require(me, "users:manage", privileged=True)
    target = _target(directory, me, user_id)
    if target.is_active == active:
        msg = f"{target.username} is already {'enabled' if active else 'disabled'}"
        raise ValueError(msg)
    if not active:
        _keep_an_admin(directory, losing=target.user_id)
    return replica.record_edit(_author(me, person), [("user", str(user_id), "is_active", active)])


def set_roles(replica: Replica, person: Person, user_id: uuid.UUID, roles: Iterable[str]) -> Edit:
    """Give a user exactly these roles (by name)."""
    directory, me = _acting(replica, person)
    _require(me, "users:manage", privileged=True)
    target = _target(directory, me, user_id)
    wanted = _roles_named(directory, roles)
    with _readable():
        _actor(me).require_to_grant({role.name: role.permissions for role in wanted})
    if target.is_admin and ADMIN not in {role.name for role in wanted}:
        _keep_an_admin(directory, losing=target.user_id)
    links = directory.links("user_role", str(user_id))
    changes = _link_changes("user_role", user_id, links, {str(role.id) for role in wanted})
    if not changes:
        msg = f"{target.username} already has exactly these roles"
        raise ValueError(msg)
    return replica.record_edit(_author(me, person), changes)


def delete_user(replica: Replica, person: Person, user_id: uuid.UUID) -> Edit:
    """Delete a user (a tombstone): they can no longer sign in anywhere."""
    directory, me = _acting(replica, person)
    _require(me, "users:manage", privileged=True)
    target = _target(directory, me, user_id)
    if target.user_id == me.user_id:  # so an Admin, the deleter, always remains
        raise PermissionError("you cannot delete your own account; another Admin can")
    key = str(user_id)
    return replica.record_edit(
        _author(me, person), [("user", key, "deleted", True), ("user", key, "is_active", False)]
    )


def set_role_permissions(
    replica: Replica, person: Person, role_id: uuid.UUID, permissions: Iterable[str]
) -> Edit:
    """Make a custom role grant exactly these permissions (by name)."""
    directory, me = _acting(replica, person)
    _require(me, "roles:manage", privileged=True)
    role = directory.role(role_id)
    if role is None:
        raise ValueError("no such role: deleted, or not synced to this station yet")
    if role.builtin:
        msg = f"the built-in role '{role.name}' cannot be changed; create a custom role instead"
        raise PermissionError(msg)
    wanted = set(permissions)
    ids = {name: directory.permission_id(name) for name in wanted}
    unknown = sorted(name for name, found in ids.items() if found is None)
    if unknown:
        msg = f"unknown permission(s): {', '.join(unknown)}"
        raise ValueError(msg)
    with _readable():  # taking away needs nothing; giving more needs holding it
        _actor(me).require_to_grant({role.name: wanted - set(role.permissions)})
    links = directory.links("role_permission", str(role_id))
    changes = _link_changes("role_permission", role_id, links, {str(i) for i in ids.values()})
    if not changes:
        msg = f"the role '{role.name}' already grants exactly these permissions"
        raise ValueError(msg)
    return replica.record_edit(_author(me, person), changes)


def override_policy() -> tuple[str, ...]:
    """The settings a station may override (setting ``station_config_overrides``)."""
    from core.settings import Settings

    return tuple(getattr(Settings(), "station_config_overrides", DEFAULT_OVERRIDES))


def override_setting(
    replica: Replica,
    person: Person,
    device_id: str,
    name: str,
    value: Any,
    *,
    policy: Collection[str] | None = None,
) -> Edit:
    """Override one of this station's settings (``None`` unsets the override).

    Only the station's own device, only the settings the policy allows (default: read
    from the settings), and only with ``config:write``.
    """
    _, me = _acting(replica, person)
    _require(me, "config:write")
    if device_id != replica.device_id:
        msg = f"a station overrides only its own settings ({replica.device_id}), not {device_id}'s"
        raise PermissionError(msg)
    allowed = override_policy() if policy is None else tuple(policy)
    if name not in allowed:
        msg = f"a station may override only {', '.join(sorted(allowed)) or 'nothing'}, not {name}"
        raise PermissionError(msg)
    checked = None if value is None else check_settings({name: value})[name]
    return replica.record_edit(
        _author(me, person), [("device_config", device_id, f"desired.{name}", checked)]
    )
