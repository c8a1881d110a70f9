"""Protocol v1 sync messages: canonical changes down, a station's own edits up.

A *field change* sets one field of one synced row to a value at an HLC stamp:
``{"e": entity, "k": key, "f": field, "v": value, "s": stamp}``. Whoever holds the
highest stamp of a field holds its value, so changes may arrive in any order, twice, or
late, and every replica that saw the same ones agrees.

Down, on ``sync/down``, signed by the server (JWS over the body, which names the device):

- ``sync.changes`` ``{after, cursor, head, changes}``: the device's changes after cursor
  ``after``; once applied, the station is at ``cursor``. ``cursor < head``: more pages wait,
  and the station pulls the next. Pushed pages and pulled ones look the same: a station
  whose own cursor is below ``after`` missed something and pulls from its cursor.
- ``sync.answers`` ``{answers: [{change_id, accepted, reason}]}``: the server's word on
  the station's edits. A refused edit is reverted on the station.

Up, on ``sync/up`` (the broker's ACL and the envelope name the device):

- ``sync.pull`` ``{since, pending}``: "send me the changes after ``since``" (and how many
  of my edits wait for an answer, for the server's sync view).
- ``sync.up`` ``{edits: [{change_id, user_id, username, changes, proof, keys}], pending}``:
  edits made on the station, each by the person signed in there, all its changes one stamp.
  ``proof`` (64 hex) is the HMAC-SHA256 of the edit under its author's edit key
  (``core.edit_keys``): the server checks it against the key it holds for them. ``keys``
  (``{user_id: 64 hex}``, at most ``MAX_KEYS``) are the new edit keys of the users whose
  password the edit sets.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.hlc import Stamp
from core.protocol.drops import Drop, DropReason
from core.protocol.messages import VERSION, encode, json_count, read_envelope, unwrap_signed
from core.protocol.messages import wrap_signed as _wrap_signed
from core.protocol.signing import SignatureError, SigningKey, VerifyingKey, verify
from core.protocol.topics import check_device_id

MAX_BYTES = 256 * 1024  # a page of changes or a batch of edits, as large as a telemetry batch
MAX_EDITS = 100  # edits in one sync.up
MAX_EDIT_CHANGES = 64  # field changes in one edit: a new user with its roles fits easily
MAX_NAME = 160  # entity, key and field names are far shorter
CHANGES, ANSWERS, PULL, UP = "sync.changes", "sync.answers", "sync.pull", "sync.up"
MAX_REASON = 300
MAX_KEYS = 8  # new edit keys in one edit: one's own, or a few people an Admin creates at once
HEX_KEY = re.compile(r"[0-9a-f]{64}")  # a proof, or an edit key, in lower-case hex


class SyncMessageError(ValueError):
    """A sync message or field change that does not follow the protocol."""


@dataclass(frozen=True)
class FieldChange:
    """One field of one synced row set to ``value`` at HLC ``stamp``."""

    entity: str
    key: str
    field: str
    value: Any
    stamp: str

    def to_wire(self) -> dict[str, Any]:
        """The change as it travels."""
        return {"e": self.entity, "k": self.key, "f": self.field, "v": self.value, "s": self.stamp}

    @classmethod
    def from_wire(cls, raw: object) -> FieldChange:
        """A change read from a message; ``SyncMessageError`` if it is not one."""
        if not isinstance(raw, dict) or set(raw) != {"e", "k", "f", "v", "s"}:
            msg = f"a field change is an object with e, k, f, v and s: {str(raw)[:120]}"
            raise SyncMessageError(msg)
        names = (raw["e"], raw["k"], raw["f"])
        if not all(isinstance(n, str) and 0 < len(n) <= MAX_NAME for n in names):
            msg = f"entity, key and field must be short non-empty strings: {names!r:.160}"
            raise SyncMessageError(msg)
        stamp = raw["s"]
        try:
            Stamp.parse(stamp)
        except (ValueError, AttributeError) as error:
            msg = f"bad stamp {str(stamp)[:100]!r}: {error}"
            raise SyncMessageError(msg) from error
        return cls(raw["e"], raw["k"], raw["f"], raw["v"], stamp)


def _changes(raw: object, limit: int | None = None) -> tuple[FieldChange, ...]:
    if not isinstance(raw, list) or (limit is not None and len(raw) > limit):
        msg = f"changes must be a list{f' of at most {limit}' if limit else ''}"
        raise SyncMessageError(msg)
    return tuple(FieldChange.from_wire(item) for item in raw)


def _cursor(body: dict[str, Any], name: str) -> int:
    value = json_count(body.get(name))
    if value is None:
        msg = f"{name} must be a non-negative integer: {body.get(name)!r}"
        raise SyncMessageError(msg)
    return value


@dataclass(frozen=True)
class ChangePage:
    """Server to station: the device's changes after ``after``, bringing it to ``cursor``."""

    device_id: str
    after: int
    cursor: int
    head: int
    changes: tuple[FieldChange, ...]

    def encode(self, key: SigningKey) -> bytes:
        """The page as published on ``sync/down``, signed with ``key``."""
        body = {
            "device_id": check_device_id(self.device_id),
            "kind": CHANGES,
            "after": self.after,
            "cursor": self.cursor,
            "head": self.head,
            "changes": [c.to_wire() for c in self.changes],
        }
        return _wrap_signed(CHANGES, self.device_id, body, key)

    @property
    def more(self) -> bool:
        """Whether the server holds changes past this page."""
        return self.cursor < self.head


@dataclass(frozen=True)
class Answer:
    """The server's word on one edit a station made."""

    change_id: uuid.UUID
    accepted: bool
    reason: str = ""

    def to_wire(self) -> dict[str, Any]:
        """The answer as it travels."""
        return {"change_id": str(self.change_id), "accepted": self.accepted, "reason": self.reason}


@dataclass(frozen=True)
class Answers:
    """Server to station: outcomes of the station's edits."""

    device_id: str
    answers: tuple[Answer, ...]

    def encode(self, key: SigningKey) -> bytes:
        """The answers as published on ``sync/down``, signed with ``key``."""
        body = {
            "device_id": check_device_id(self.device_id),
            "kind": ANSWERS,
            "answers": [a.to_wire() for a in self.answers],
        }
        return _wrap_signed(ANSWERS, self.device_id, body, key)


def read_down(
    payload: bytes, device_id: str, keys: Iterable[VerifyingKey]
) -> ChangePage | Answers | str:
    """A verified message from ``sync/down``, or why it is refused."""
    kind = _kind(payload)
    if kind not in (CHANGES, ANSWERS):
        return f"not a sync.changes or sync.answers message: {kind!r}"
    signed = unwrap_signed(payload, kind, device_id, keys, max_bytes=MAX_BYTES, what="sync page")
    if isinstance(signed, str):
        return signed
    token, trusted = signed
    try:
        body = verify(token, trusted)
    except SignatureError as error:
        return f"signature: {error}"
    if body.get("device_id") != device_id or body.get("kind") != kind:
        return f"signed for {body.get('device_id')!r} as {body.get('kind')!r}, not this message"
    try:
        if kind == CHANGES:
            return ChangePage(
                device_id,
                _cursor(body, "after"),
                _cursor(body, "cursor"),
                _cursor(body, "head"),
                _changes(body.get("changes")),
            )
        return Answers(device_id, tuple(_answer(a) for a in _list(body.get("answers"))))
    except SyncMessageError as error:
        return str(error)


def _answer(raw: object) -> Answer:
    if not isinstance(raw, dict) or not isinstance(raw.get("accepted"), bool):
        msg = f"an answer needs change_id and accepted: {str(raw)[:120]}"
        raise SyncMessageError(msg)
    return Answer(_uuid(raw.get("change_id")), raw["accepted"], str(raw.get("reason", "")))


def _uuid(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as error:
        msg = f"not a UUID: {str(value)[:60]!r}"
        raise SyncMessageError(msg) from error


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        msg = "expected a list"
        raise SyncMessageError(msg)
    return value


def _kind(payload: bytes) -> object:
    """The ``type`` a message claims, before it is checked (``read_envelope`` checks it all)."""
    if len(payload) > MAX_BYTES:
        return None
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return message.get("type") if isinstance(message, dict) else None


@dataclass(frozen=True)
class Pull:
    """Station to server: send me the changes after ``since``."""

    device_id: str
    since: int
    pending: int = 0  # the station's edits waiting for an answer

    def encode(self) -> bytes:
        """The pull as published on ``sync/up``."""
        return encode(
            {
                "v": VERSION,
                "type": PULL,
                "device_id": check_device_id(self.device_id),
                "since": self.since,
                "pending": self.pending,
            }
        )


@dataclass(frozen=True)
class Edit:
    """Changes a person signed in at a station made together, all at one stamp.

    ``proof``: the HMAC of the edit under its author's edit key (``core.edit_keys.prove``).
    ``keys``: the new edit keys (hex) of the users whose password it sets; as good as
    those passwords for sync, so never in a repr.
    """

    change_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    changes: tuple[FieldChange, ...]
    proof: str
    keys: dict[uuid.UUID, str] = field(default_factory=dict, repr=False, hash=False)

    def to_wire(self) -> dict[str, Any]:
        """The edit as it travels."""
        return {
            "change_id": str(self.change_id),
            "user_id": str(self.user_id),
            "username": self.username,
            "changes": [c.to_wire() for c in self.changes],
            "proof": self.proof,
            "keys": {str(user_id): key for user_id, key in self.keys.items()},
        }


@dataclass(frozen=True)
class Up:
    """Station to server: edits made on the station."""

    device_id: str
    edits: tuple[Edit, ...]
    pending: int = 0

    def encode(self) -> bytes:
        """The edits as published on ``sync/up``."""
        return encode(
            {
                "v": VERSION,
                "type": UP,
                "device_id": check_device_id(self.device_id),
                "edits": [e.to_wire() for e in self.edits],
                "pending": self.pending,
            }
        )


def read_up(payload: bytes, device_id: str) -> Pull | Up | Drop:
    """A message from ``sync/up``, or why it is dropped."""
    kind = _kind(payload)
    if kind not in (PULL, UP):
        return Drop(DropReason.MALFORMED, f"not a sync.pull or sync.up message: {kind!r}")
    message = read_envelope(payload, kind, device_id, max_bytes=MAX_BYTES)
    if isinstance(message, Drop):
        return message
    pending = json_count(message.get("pending", 0))
    try:
        if pending is None:
            raise SyncMessageError("pending must be a non-negative integer")
        if kind == PULL:
            return Pull(device_id, _cursor(message, "since"), pending)
        edits = _list(message.get("edits"))
        if len(edits) > MAX_EDITS:
            raise SyncMessageError(f"at most {MAX_EDITS} edits a message")
        return Up(device_id, tuple(_edit(e) for e in edits), pending)
    except SyncMessageError as error:
        return Drop(DropReason.MALFORMED, str(error))


def _edit(raw: object) -> Edit:
    if not isinstance(raw, dict):
        raise SyncMessageError("an edit is an object")
    username = raw.get("username")
    if not isinstance(username, str) or not 0 < len(username) <= 64:
        raise SyncMessageError(f"bad username {str(username)[:80]!r}")
    changes = _changes(raw.get("changes"), MAX_EDIT_CHANGES)
    if not changes or len({c.stamp for c in changes}) != 1:
        raise SyncMessageError("an edit holds one or more changes, all at one stamp")
    proof = raw.get("proof")
    if not isinstance(proof, str) or not HEX_KEY.fullmatch(proof):
        raise SyncMessageError("an edit's proof is 64 lower-case hex digits")
    return Edit(
        _uuid(raw.get("change_id")),
        _uuid(raw.get("user_id")),
        username,
        changes,
        proof,
        _keys(raw.get("keys", {})),
    )


def _keys(raw: object) -> dict[uuid.UUID, str]:
    """An edit's new edit keys: ``{user_id: 64 hex}``, at most ``MAX_KEYS``."""
    if not isinstance(raw, dict) or len(raw) > MAX_KEYS:
        msg = f"an edit's keys are an object of at most {MAX_KEYS}"
        raise SyncMessageError(msg)
    keys: dict[uuid.UUID, str] = {}
    for user_id, key in raw.items():
        if not isinstance(key, str) or not HEX_KEY.fullmatch(key):
            raise SyncMessageError("an edit key is 64 lower-case hex digits")
        keys[_uuid(user_id)] = key
    return keys
