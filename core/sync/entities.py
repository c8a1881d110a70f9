"""What syncs between the server and the stations, field by field, and who decides each field.

A synced row is named by its entity and a *key* (its primary key, parts joined by ":"; ids
and device ids hold no colon). Each synced column is a *field* with its own HLC stamp,
except a JSON object column listed in ``expand``, whose keys sync one by one as
``column.key`` (a station's interval override and an admin's unit change do not overwrite
each other). ``None`` sets an expanded key back to unset.

Privileged fields are decided by the server: a station's change to one counts only if the
person who made it was an Admin in the server's own records when they made it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.db.models import DeviceConfig, Permission, Role, RolePermission, User, UserRole

KEY_SEPARATOR = ":"
MAX_KEY = 160  # two UUIDs and a separator, or a device id, with room to spare
MAX_FIELD = 96


@dataclass(frozen=True)
class Entity:
    """One synced table as sync sees it."""

    name: str
    model: type[Any]
    key: tuple[str, ...]  # primary-key columns, in key order
    fields: tuple[str, ...]  # synced columns
    privileged: frozenset[str]  # columns (or expanded columns) the server decides
    expand: frozenset[str] = frozenset()  # JSON object columns synced key by key
    station_writable: bool = True  # False: stations never change it (the catalogue)
    scoped_by: str | None = None  # the column naming the one device a row concerns

    def column_of(self, field: str) -> str | None:
        """The column a field belongs to, or None if the entity has no such field."""
        column, dot, sub = field.partition(".")
        if not dot:
            return field if field in self.fields and field not in self.expand else None
        return column if column in self.expand and sub and len(field) <= MAX_FIELD else None

    def is_privileged(self, field: str) -> bool:
        """Whether the server decides ``field`` (only an Admin's station change counts)."""
        return self.column_of(field) in self.privileged


USER = Entity(
    "user",
    User,
    ("id",),
    ("username", "display_name", "password_hash", "is_active", "deleted"),
    # A person's display name is theirs to edit; who they are and whether and how they
    # sign in are not.
    privileged=frozenset({"username", "password_hash", "is_active", "deleted"}),
)
ROLE = Entity(
    "role",
    Role,
    ("id",),
    ("name", "description", "builtin", "deleted"),
    privileged=frozenset({"name", "description", "builtin", "deleted"}),
)
PERMISSION = Entity(
    "permission",
    Permission,
    ("id",),
    ("name", "description", "deleted"),
    privileged=frozenset({"name", "description", "deleted"}),
    station_writable=False,  # the catalogue is the code's (core.rbac)
)
ROLE_PERMISSION = Entity(
    "role_permission",
    RolePermission,
    ("role_id", "permission_id"),
    ("deleted",),
    privileged=frozenset({"deleted"}),
)
USER_ROLE = Entity(
    "user_role",
    UserRole,
    ("user_id", "role_id"),
    ("deleted",),
    privileged=frozenset({"deleted"}),
)
DEVICE_CONFIG = Entity(
    "device_config",
    DeviceConfig,
    ("device_id",),
    ("desired", "desired_version"),
    # Settings are decided by policy (core.sync.policy), the version by the server alone.
    privileged=frozenset({"desired_version"}),
    expand=frozenset({"desired"}),
    scoped_by="device_id",
)

ENTITIES: dict[str, Entity] = {
    e.name: e for e in (USER, ROLE, PERMISSION, ROLE_PERMISSION, USER_ROLE, DEVICE_CONFIG)
}
_BY_MODEL: dict[type[Any], Entity] = {e.model: e for e in ENTITIES.values()}


def of(obj: object) -> Entity | None:
    """The entity of an ORM object, or None if its table does not sync."""
    return _BY_MODEL.get(type(obj))


def key_of(entity: Entity, obj: object) -> str:
    """The key string of a row."""
    return KEY_SEPARATOR.join(str(getattr(obj, column)) for column in entity.key)


def parse_key(entity: Entity, key: str) -> dict[str, Any]:
    """The primary-key columns a key string names; ValueError if it names none."""
    parts = key.split(KEY_SEPARATOR)
    if len(key) > MAX_KEY or len(parts) != len(entity.key) or not all(parts):
        msg = f"bad {entity.name} key {key[:80]!r}"
        raise ValueError(msg)
    # Every key column is a UUID but a device id.
    return {
        column: part if column == "device_id" else uuid.UUID(part)
        for column, part in zip(entity.key, parts, strict=True)
    }


def field_values(entity: Entity, obj: object) -> dict[str, Any]:
    """Every synced field of a row with its JSON value (expanded columns key by key)."""
    values: dict[str, Any] = {}
    for column in entity.fields:
        value = getattr(obj, column)
        if column in entity.expand:
            values.update({f"{column}.{k}": v for k, v in (value or {}).items()})
        else:
            values[column] = value
    return values


def expanded_changes(column: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an expanded column that differ between two of its values."""
    return {
        f"{column}.{k}": new.get(k)
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    }
