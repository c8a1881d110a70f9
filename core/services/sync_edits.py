"""What a station's edit may hold, checked before anything is read or written.

Rules:
- An edit is one or more field changes, all at one stamp made by the station's own clock
  (its node is the device id), each field set once.
- Each change names a synced entity stations may write, one of its fields, and a key that
  parses; its value has the column's type and fits it.
- A configuration change is a ``desired.<setting>`` of the station's own device, for a
  setting the policy (``Settings.station_config_overrides``) lets stations override; the
  merged configuration is checked by the inbox, which knows the rest of it.
- New edit keys come only with the passwords they belong to: an edit carries a key only for
  a user whose ``password_hash`` it sets.
One bad change refuses the whole edit (``EditError`` says why, in words for people).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidError
from core.hlc import Stamp
from core.protocol.sync import Edit, FieldChange
from core.services.users import check_username
from core.sync import entities

ARGON2 = "$argon2"  # every hash core.passwords makes starts so; anything else signs no one in
MAX_DISPLAY_NAME = 128  # users.display_name
MAX_PASSWORD_HASH = 256  # users.password_hash
MAX_ROLE_NAME = 64  # roles.name
MAX_ROLE_DESCRIPTION = 256  # roles.description
BOOLEANS = frozenset({"is_active", "deleted", "builtin"})
_PASSWORD = ("user", "password_hash")


class EditError(ValueError):
    """Why an edit is refused before it is looked at further."""


@dataclass(frozen=True)
class Checked:
    """A change that passed: its entity, its key's columns and the column it sets."""

    change: FieldChange
    entity: entities.Entity
    key: dict[str, Any]
    column: str

    @property
    def setting(self) -> str:
        """The setting a ``desired.<setting>`` change sets ('' for other fields)."""
        return self.change.field.partition(".")[2]


def check(edit: Edit, *, device_id: str, overrides: Collection[str]) -> list[Checked]:
    """Every change of ``edit`` checked, or ``EditError`` for the first that is not right."""
    if not edit.changes:
        raise EditError("an edit holds at least one change")
    stamps = {c.stamp for c in edit.changes}
    if len(stamps) != 1:
        raise EditError("an edit's changes are made at one stamp")
    try:
        node = Stamp.parse(stamps.pop()).node
    except ValueError as error:
        msg = f"bad stamp: {error}"
        raise EditError(msg) from error
    if node != device_id:
        msg = f"its stamp was made by {node[:64]!r}'s clock, not this station's"
        raise EditError(msg)
    seen: set[tuple[str, str, str]] = set()
    checked = []
    for change in edit.changes:
        where = (change.entity, change.key, change.field)
        if where in seen:
            msg = f"{change.entity} {change.field} is set twice in one edit"
            raise EditError(msg)
        seen.add(where)
        checked.append(_check_change(change, device_id, overrides))
    passwords = {c.key["id"] for c in checked if (c.entity.name, c.column) == _PASSWORD}
    if any(user_id not in passwords for user_id in edit.keys):
        raise EditError("malformed: an edit key for a user whose password it does not set")
    return checked


def _check_change(change: FieldChange, device_id: str, overrides: Collection[str]) -> Checked:
    entity = entities.ENTITIES.get(change.entity)
    if entity is None:
        msg = f"no such kind of record: {change.entity[:40]!r}"
        raise EditError(msg)
    if not entity.station_writable:
        msg = f"stations never change a {entity.name}: the server's code decides them"
        raise EditError(msg)
    column = entity.column_of(change.field)
    if column is None:
        msg = f"a {entity.name} has no field {change.field[:60]!r}"
        raise EditError(msg)
    try:
        key = entities.parse_key(entity, change.key)
    except ValueError as error:
        msg = f"bad {entity.name} key {change.key[:80]!r}"
        raise EditError(msg) from error
    if entities.KEY_SEPARATOR.join(str(part) for part in key.values()) != change.key:
        # One row, one key in the log: an upper-case UUID would start a second history.
        msg = f"bad {entity.name} key {change.key[:80]!r}: ids are written in lower case"
        raise EditError(msg)
    checked = Checked(change, entity, key, column)
    if entity is entities.DEVICE_CONFIG:
        _check_config(checked, device_id, overrides)
    else:
        _check_value(entity.name, change.field, change.value)
    return checked


def _check_config(checked: Checked, device_id: str, overrides: Collection[str]) -> None:
    if checked.column not in checked.entity.expand:
        msg = f"{checked.change.field} is the server's to set"
        raise EditError(msg)
    if checked.change.key != device_id:
        msg = f"a station changes only its own configuration, not {checked.change.key!r}'s"
        raise EditError(msg)
    if checked.setting not in overrides:
        allowed = ", ".join(sorted(overrides)) or "none"
        msg = f"stations may not override {checked.setting!r} (allowed: {allowed})"
        raise EditError(msg)


def _check_value(entity: str, field: str, value: Any) -> None:
    if field in BOOLEANS:
        if not isinstance(value, bool):
            msg = f"{entity} {field} must be true or false"
            raise EditError(msg)
        if field == "builtin" and value:
            raise EditError("stations never make a built-in role")
        return
    if not isinstance(value, str):
        msg = f"{entity} {field} must be text"
        raise EditError(msg)
    if (entity, field) == ("user", "username"):
        try:
            check_username(value)
        except InvalidError as error:
            raise EditError(error.message) from error
    elif (entity, field) == ("user", "display_name"):
        _fits(value, MAX_DISPLAY_NAME, "a display name")
    elif (entity, field) == ("user", "password_hash"):
        if not value.startswith(ARGON2) or len(value) > MAX_PASSWORD_HASH:
            raise EditError("a password hash must be an argon2 hash")
    elif (entity, field) == ("role", "name"):
        _fits(value, MAX_ROLE_NAME, "a role name")
        if not value or value != value.strip():
            raise EditError("a role name is not empty and has no spaces around it")
    elif (entity, field) == ("role", "description"):
        _fits(value, MAX_ROLE_DESCRIPTION, "a role description")


def _fits(value: str, limit: int, what: str) -> None:
    if len(value) > limit:
        msg = f"{what} is at most {limit} characters"
        raise EditError(msg)
