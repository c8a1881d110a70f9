"""Who is who at a station: people, roles and permissions read from the replica's fields.

The replica stores synced rows field by field (``core.sync.entities``); this module turns
the effective fields (canonical or pending, whichever is newer) into records. The rules
are the server's (``core.services.users.permission_names``): a row is live unless its
``deleted`` is true; a person's permissions are the union, over their live links to live
roles, of those roles' live links to live permissions. A row missing the fields that make
it usable (a user without a username, a role without a name) is left out, and a person
whose ``is_active`` is not known to be true is treated as disabled.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from core.rbac import ADMIN
from core.sync import entities

# entity → key → field → value: one snapshot of the effective fields.
Rows = Mapping[str, Mapping[str, Mapping[str, Any]]]
DESIRED_PREFIX = "desired."  # device_config's expanded settings (entities.DEVICE_CONFIG)


@dataclass(frozen=True)
class PersonRecord:
    """A live user as the station's replica sees them."""

    user_id: uuid.UUID
    username: str
    display_name: str
    is_active: bool
    password_hash: str = dataclasses.field(repr=False)  # "": the replica has none, none matches
    roles: tuple[str, ...]  # names, sorted
    permissions: frozenset[str]

    @property
    def is_admin(self) -> bool:
        """Whether they hold the built-in Admin role."""
        return ADMIN in self.roles


@dataclass(frozen=True)
class RoleRecord:
    """A live role and the permissions it grants."""

    id: uuid.UUID
    name: str
    description: str
    permissions: tuple[str, ...]  # names, sorted
    builtin: bool = False


def effective_rows(
    canonical: Iterable[tuple[str, str, str, str, str]], pending: Iterable[Mapping[str, Any]]
) -> Rows:
    """Rows from canonical fields (entity, key, field, JSON value, stamp) and pending changes
    (on the wire's form): per field, the value of the higher stamp.
    """
    stamped: dict[tuple[str, str, str], tuple[str, str | None, Any]] = {
        (entity, key, field): (stamp, value, None) for entity, key, field, value, stamp in canonical
    }
    for change in pending:
        at = (change["e"], change["k"], change["f"])
        held = stamped.get(at)
        if held is None or change["s"] > held[0]:
            stamped[at] = (change["s"], None, change["v"])
    rows: defaultdict[str, defaultdict[str, dict[str, Any]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for (entity, key, field), (_, text, value) in stamped.items():
        rows[entity][key][field] = value if text is None else orjson.loads(text)
    return rows


def _live(fields: Mapping[str, Any]) -> bool:
    return fields.get("deleted") is not True


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _links(rows: Rows, entity: str) -> Iterator[tuple[str, str]]:
    """The (owner key, other key) pairs of an entity's live link rows."""
    for key, fields in rows.get(entity, {}).items():
        owner, _, other = key.partition(entities.KEY_SEPARATOR)
        if owner and other and _live(fields):
            yield owner, other


class Directory:
    """People, roles and permissions of one snapshot of effective fields."""

    def __init__(self, rows: Rows) -> None:
        self._rows = rows
        permissions = {
            key: name
            for key, fields in rows.get("permission", {}).items()
            if _live(fields) and isinstance(name := fields.get("name"), str)
        }
        live_roles = {
            key: fields
            for key, fields in rows.get("role", {}).items()
            if _live(fields) and isinstance(fields.get("name"), str) and _uuid(key)
        }
        grants: dict[str, set[str]] = {key: set() for key in live_roles}
        for role, permission in _links(rows, "role_permission"):
            if role in grants and permission in permissions:
                grants[role].add(permissions[permission])
        self._roles = {
            key: RoleRecord(
                id=uuid.UUID(key),
                name=str(fields["name"]),
                description=str(fields.get("description") or ""),
                permissions=tuple(sorted(grants[key])),
                builtin=fields.get("builtin") is True,
            )
            for key, fields in live_roles.items()
        }
        held: dict[str, list[RoleRecord]] = {}
        for user, role in _links(rows, "user_role"):
            if role in self._roles:
                held.setdefault(user, []).append(self._roles[role])
        self._people: dict[uuid.UUID, PersonRecord] = {}
        for key, fields in rows.get("user", {}).items():
            user_id, username = _uuid(key), fields.get("username")
            if user_id is None or not isinstance(username, str) or not _live(fields):
                continue
            roles = held.get(key, [])
            self._people[user_id] = PersonRecord(
                user_id=user_id,
                username=username,
                display_name=str(fields.get("display_name") or ""),
                is_active=fields.get("is_active") is True,
                password_hash=str(fields.get("password_hash") or ""),
                roles=tuple(sorted({r.name for r in roles})),
                permissions=frozenset(p for r in roles for p in r.permissions),
            )
        self._by_username = {p.username: p for p in self._people.values()}
        self._permission_names = sorted(set(permissions.values()))
        self._permission_ids = {name: uuid.UUID(key) for key, name in permissions.items()}

    def people(self) -> list[PersonRecord]:
        """Live users, by username."""
        return sorted(self._people.values(), key=lambda p: p.username)

    def find(self, username: str) -> PersonRecord | None:
        """The live user with this username."""
        return self._by_username.get(username)

    def person(self, user_id: uuid.UUID) -> PersonRecord | None:
        """The live user with this id."""
        return self._people.get(user_id)

    def username_taken(self, username: str) -> bool:
        """Whether any user row, deleted ones too, has this username (the server's rule)."""
        return any(f.get("username") == username for f in self._rows.get("user", {}).values())

    def roles(self) -> list[RoleRecord]:
        """Live roles, by name."""
        return sorted(self._roles.values(), key=lambda r: r.name)

    def role(self, role_id: uuid.UUID) -> RoleRecord | None:
        """The live role with this id."""
        return self._roles.get(str(role_id))

    def permission_names(self) -> list[str]:
        """Live permissions, by name."""
        return list(self._permission_names)

    def permission_id(self, name: str) -> uuid.UUID | None:
        """The id of a live permission."""
        return self._permission_ids.get(name)

    def desired(self, device_id: str) -> dict[str, Any]:
        """The device's desired settings as synced (``desired.<name>``; unset ones left out)."""
        fields = self._rows.get("device_config", {}).get(device_id, {})
        return {
            name.removeprefix(DESIRED_PREFIX): value
            for name, value in fields.items()
            if name.startswith(DESIRED_PREFIX) and value is not None
        }

    def links(self, entity: str, owner: str) -> dict[str, bool]:
        """Every link row of ``owner`` in a link entity: other key → whether it is live."""
        prefix = owner + entities.KEY_SEPARATOR
        return {
            key.removeprefix(prefix): _live(fields)
            for key, fields in self._rows.get(entity, {}).items()
            if key.startswith(prefix)
        }
