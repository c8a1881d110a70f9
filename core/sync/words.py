"""Synced rows, fields and values as people read them: names for ids, words for fields.

A password hash is never shown to anyone, by any reader: its value reads "password
changed". Names come from a lookup the caller fills (``Names``, ids the ``key_ids`` of a
row name); a row the lookup lacks reads "an unknown user", never its id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from core.sync.entities import ENTITIES, parse_key

Names = Mapping[uuid.UUID, tuple[str, bool]]  # id -> (name, deleted)
HIDDEN_FIELDS = frozenset({("user", "password_hash")})  # never shown, whoever reads
PASSWORD_CHANGED = "password changed"
SETTING_PREFIX = "desired."  # device_config's desired JSON syncs key by key

# What each key column names, by entity: ("user" | "role" | "permission", column).
_KEY_KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    "user": (("user", "id"),),
    "role": (("role", "id"),),
    "permission": (("permission", "id"),),
    "user_role": (("user", "user_id"), ("role", "role_id")),
    "role_permission": (("role", "role_id"), ("permission", "permission_id")),
}
_FIELDS = {
    ("user", "username"): "username",
    ("user", "display_name"): "display name",
    ("user", "password_hash"): "password",
    ("user", "is_active"): "enabled",
    ("user", "deleted"): "account",
    ("role", "builtin"): "built-in",
    ("role", "deleted"): "role",
    ("permission", "deleted"): "permission",
    ("role_permission", "deleted"): "grant",
    ("user_role", "deleted"): "role given",
    ("device_config", "desired_version"): "configuration version",
}
# A configuration setting's name in words, and the unit its values carry ("" for none).
_SETTINGS = {
    "interval_s": ("sampling interval", "s"),
    "heartbeat_s": ("heartbeat interval", "s"),
    "units": ("channel units", ""),
    "thresholds": ("alarm thresholds", ""),
}
_EXISTS = {True: "deleted", False: "exists"}
_VALUES: dict[tuple[str, str], dict[bool, str]] = {
    ("user", "is_active"): {True: "enabled", False: "disabled"},
    ("user", "deleted"): _EXISTS,
    ("role", "deleted"): _EXISTS,
    ("permission", "deleted"): _EXISTS,
    ("role_permission", "deleted"): {False: "granted", True: "withdrawn"},
    ("user_role", "deleted"): {False: "given", True: "taken away"},
}


def is_hidden(entity: str, field: str) -> bool:
    """Whether a field's values are never shown (a password hash)."""
    return (entity, field) in HIDDEN_FIELDS


def safe_value(entity: str, field: str, value: Any) -> Any:
    """``value`` as a reader may see it: a hidden field's value is "password changed"."""
    return PASSWORD_CHANGED if is_hidden(entity, field) else value


def key_ids(entity: str, key: str) -> list[tuple[str, uuid.UUID]]:
    """The (kind, id) of each user, role or permission a row's key names ([] if none)."""
    kinds = _KEY_KINDS.get(entity)
    if kinds is None:
        return []
    try:
        columns = parse_key(ENTITIES[entity], key)
    except ValueError:
        return []
    return [(kind, columns[column]) for kind, column in kinds]


def _name(kind: str, ident: uuid.UUID, names: Names) -> str:
    found = names.get(ident)
    if found is None:
        return f"an unknown {kind}"
    name, deleted = found
    return f"{name} (deleted)" if deleted else name


def subject(entity: str, key: str, names: Names) -> str:
    """The row in words: "User olga", "Role Operators", "olga's role Admin"."""
    if entity == "device_config":
        return f"Configuration of {key}"
    named = [_name(kind, ident, names) for kind, ident in key_ids(entity, key)]
    if not named:
        return f"a {entity.replace('_', ' ')} record"
    if entity == "user_role":
        return f"{named[0]}'s role {named[1]}"
    if entity == "role_permission":
        return f"Permission {named[1]} of role {named[0]}"
    head = named[0]
    return (
        head[0].upper() + head[1:] if head.startswith("an unknown") else f"{entity.title()} {head}"
    )


def field_words(entity: str, field: str) -> str:
    """A field in words: "display name", "enabled", "sampling interval"."""
    if entity == "device_config" and field.startswith(SETTING_PREFIX):
        name = field.removeprefix(SETTING_PREFIX)
        return _SETTINGS[name][0] if name in _SETTINGS else f"setting {name}"
    return _FIELDS.get((entity, field), field.replace("_", " "))


def value_words(entity: str, field: str, value: Any) -> str:
    """A value in words: "disabled", "taken away", "2.5 s", never a password hash."""
    if is_hidden(entity, field):
        return PASSWORD_CHANGED
    if isinstance(value, bool) and (entity, field) in _VALUES:
        return _VALUES[entity, field][value]
    if value is None:
        return "unset" if field.startswith(SETTING_PREFIX) else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value or "(empty)"
    if isinstance(value, int | float):
        unit = _SETTINGS.get(field.removeprefix(SETTING_PREFIX), ("", ""))[1]
        return f"{value:g} {unit}" if unit and field.startswith(SETTING_PREFIX) else str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
