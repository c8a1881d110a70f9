"""A station's edits as the replica makes, stores and reads them back: checked, signed.

Rules:
- An edit is 1 to ``MAX_EDIT_CHANGES`` changes of station-writable fields, each field once,
  all at one stamp (permission is the caller's to check).
- It is signed with its author's edit key (``core.edit_keys``), which their sign-in derived
  and only memory holds: the proof is stored with the edit, the key never. An author without
  one (not signed in by password) makes no edit.
- It may carry the new edit keys of the users whose password it sets, and only those: they
  wait with it in the replica until the server answers (the station saw those passwords).
- A row stored before edits were signed (replica schema v1) has no proof: it is read back
  with ``UNSIGNED``, which no key makes, so the server refuses it and the station reverts it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

import orjson

from core import edit_keys
from core.protocol.sync import MAX_EDIT_CHANGES, MAX_KEYS, Edit, FieldChange
from core.sync import entities

COLUMNS = "change_id, user_id, username, changes, proof, keys"  # of ``pending``, as ``row``
# The proof of an edit written before edits were signed: well-formed on the wire, so the
# server answers it (refused, as no one's key makes it) and the station reverts it.
UNSIGNED = "0" * edit_keys.PROOF_CHARS
SIGN_IN_AGAIN = "sign in again to make changes"
Row = tuple[str, str, str, str, str | None, str]


class Author(Protocol):
    """Who makes an edit: a signed-in Person, with the edit key their sign-in derived."""

    @property
    def user_id(self) -> uuid.UUID:
        """Their user id."""
        ...

    @property
    def username(self) -> str:
        """Their username."""
        ...

    @property
    def edit_key(self) -> bytes | None:
        """Their edit key (``core.edit_keys``); None: they may not edit."""
        ...


def dump(value: Any) -> str:
    """A JSON value as the replica stores it (keys sorted)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def make(
    author: Author,
    changes: Sequence[tuple[str, str, str, Any]],
    keys: Mapping[uuid.UUID, bytes],
    *,
    stamp: Callable[[], str],
) -> Edit:
    """The edit of ``changes`` (entity, key, field, value) by ``author``, at one ``stamp()``
    taken once it is checked, signed; ValueError says what is wrong with it."""
    signing = author.edit_key
    if signing is None:
        raise ValueError(SIGN_IN_AGAIN)
    checked = [_check_change(*change) for change in changes]
    if not 0 < len(checked) <= MAX_EDIT_CHANGES:
        msg = f"an edit holds 1 to {MAX_EDIT_CHANGES} changes, not {len(checked)}"
        raise ValueError(msg)
    if len({(c.entity, c.key, c.field) for c in checked}) != len(checked):
        raise ValueError("an edit changes each field once")
    carried = _new_keys(checked, keys)
    at = stamp()
    unsigned = Edit(
        uuid.uuid4(),
        author.user_id,
        author.username,
        tuple(replace(c, stamp=at) for c in checked),
        "",
        carried,
    )
    return replace(unsigned, proof=edit_keys.prove(signing, unsigned))


def row(edit: Edit) -> Row:
    """The edit as stored in ``pending`` (``COLUMNS``, in order)."""
    return (
        str(edit.change_id),
        str(edit.user_id),
        edit.username,
        dump([c.to_wire() for c in edit.changes]),
        edit.proof,
        dump({str(user_id): key for user_id, key in edit.keys.items()}),
    )


def from_row(stored: Row) -> Edit:
    """The edit a ``pending`` row holds (``COLUMNS``, in order)."""
    change_id, user_id, username, changes, proof, keys = stored
    return Edit(
        uuid.UUID(change_id),
        uuid.UUID(user_id),
        username,
        tuple(FieldChange.from_wire(c) for c in orjson.loads(changes)),
        proof or UNSIGNED,
        {uuid.UUID(k): v for k, v in orjson.loads(keys).items()},
    )


def _new_keys(
    checked: Sequence[FieldChange], keys: Mapping[uuid.UUID, bytes]
) -> dict[uuid.UUID, str]:
    """The new edit keys in hex; ValueError unless each is for a password the edit sets."""
    if len(keys) > MAX_KEYS:
        msg = f"an edit carries at most {MAX_KEYS} new edit keys"
        raise ValueError(msg)
    passwords = {c.key for c in checked if (c.entity, c.field) == ("user", "password_hash")}
    if any(str(user_id) not in passwords for user_id in keys):
        raise ValueError("an edit carries edit keys only for the passwords it sets")
    return {user_id: key.hex() for user_id, key in keys.items()}


def _check_change(entity: str, key: str, field: str, value: Any) -> FieldChange:
    """A station edit's change checked for shape (not permission); ValueError if bad."""
    kind = entities.ENTITIES.get(entity)
    if kind is None or not kind.station_writable:
        msg = f"a station cannot change {entity!r}"
        raise ValueError(msg)
    if kind.column_of(field) is None:
        msg = f"{entity} has no field {field!r}"
        raise ValueError(msg)
    try:
        entities.parse_key(kind, key)
    except ValueError as error:
        msg = f"bad {entity} key {key[:80]!r}"
        raise ValueError(msg) from error
    try:
        dump(value)
    except TypeError as error:
        msg = f"{entity}.{field}: not a JSON value: {error}"
        raise ValueError(msg) from error
    return FieldChange(entity, key, field, value, "")
