"""Commands on the wire: the kinds and their arguments, the signed command, the station's answers.

The server publishes a command on the device's ``cmd`` topic at QoS 2: an envelope holding a
compact JWS (the server's key) whose payload names the command id, the device, the kind,
the arguments, when it was issued and when it expires. The station answers on
``cmd/result`` (QoS 1) with the command id and one of the states a station may tell:

- ``delivered``: verified and accepted, it runs now (only the station can say this);
- ``succeeded`` / ``failed``: it ran, with a detail and the kind's result data;
- ``rejected``: refused without running (bad signature, another device's, expired, an
  unknown kind, bad arguments), with the reason.

A station never runs one id twice: a second delivery of an id it has seen is answered with
what it answered last, marked ``repeat``: the server never sends an ended command again, so
a repeat about one is a replay, audited. A message it cannot verify is answered with
``cmd_id: null`` and the id it claimed in ``claimed_id``: an unsigned message must not move
a real command's state.

At a published command's deadline, if the station has not answered, the server asks it once
what became of it: a ``command.query`` on the same ``cmd`` topic (so it arrives after any
copy of the command published before it), signed like a command, naming the command id and
its ``expires_at``, with a short life of its own (``QUERY_LIFE_MS``). The station answers on
``cmd/result`` from its ledger (repeat: it never runs anything because of a question); an id
it has never seen it claims as refused (``NOT_RECEIVED``), so the command, should it still
arrive, is refused as well: its ``rejected`` answer says, truthfully, never run. A query
that does not verify changes nothing.

Both sides check arguments here (``check_args``): the server refuses a bad command with the
field named before anything is stored, and the station refuses it again.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from core.protocol.drops import Drop, DropReason
from core.protocol.messages import encode, json_count, read_envelope, unwrap_signed, wrap_signed
from core.protocol.signing import (
    DEFAULT_LEEWAY_MS,
    ExpiredError,
    SignatureError,
    SigningKey,
    VerifyingKey,
    verify,
    verify_envelope,
)
from core.protocol.station_config import ConfigError, check_settings

VERSION = 1
COMMAND_TYPE = "command"
RESULT_TYPE = "command.result"
QUERY_TYPE = "command.query"
# A command carries at most a partial configuration (a full units table fits); a result
# at most a detail and a small object of figures.
MAX_BYTES = 128 * 1024
MAX_DETAIL = 1024
MAX_RESULT_BYTES = 8 * 1024

PING, UPDATE_CONFIG, FLUSH_OUTBOX = "Ping", "UpdateConfig", "FlushOutbox"
KINDS: Final = (PING, UPDATE_CONFIG, FLUSH_OUTBOX)

# Every state a command can be in, in the order of its life; the last five end it.
STATES: Final = (
    "queued",
    "sent",
    "delivered",
    "succeeded",
    "failed",
    "rejected",
    "expired",
    "timed_out",
    "canceled",
)
TERMINAL: Final = frozenset({"succeeded", "failed", "rejected", "expired", "timed_out", "canceled"})
StationState = Literal["delivered", "succeeded", "failed", "rejected"]
STATION_STATES: Final = frozenset({"delivered", "succeeded", "failed", "rejected"})
# Shortest and longest life a command may be given (API ``timeout_s``): a round trip on a
# loaded link takes a second or two; a bulk change may wait a week for a station that is off.
MIN_TIMEOUT_S, MAX_TIMEOUT_S = 1, 7 * 24 * 3600
DEFAULT_TIMEOUT_S = 30
# How long past its signed ``expires_at`` a station still accepts a command: the signing
# leeway, for clocks that disagree. The server's deadlines count from this same figure
# (core.services.commands.deadlines), so it never calls expired what a station may still run.
ACCEPT_LEEWAY_MS: Final = DEFAULT_LEEWAY_MS
# A command accepted at or past its expiry still gets this long to run on the station:
# refusing it later than its acceptance would tell the server nothing new.
MIN_RUN_S: Final = 1.0
# A station's answer on its way to the server's record: QoS 1 through the broker, a result
# worker's queue, one transaction; generous, since it only delays a verdict of silence.
ANSWER_TRANSIT_S: Final = 30.0
# A status query's own life: a round trip takes a second or two; one held up longer (the
# broker queued it for a station that was away) is stale, and the server's grace sweep rules.
QUERY_LIFE_MS: Final = 60_000
# What a station answers (``rejected``) for a command it was asked about and never received:
# it is refused from then on, so the server may say it never ran.
NOT_RECEIVED: Final = "not received before its deadline"


class ArgsError(ValueError):
    """Arguments a command of its kind cannot take: the field (``args.<name>``) and why."""

    def __init__(self, message: str, field: str = "args") -> None:
        super().__init__(message)
        self.field = field


def _no_args(kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
    if args:
        name = sorted(args)[0]
        msg = f"{kind} takes no arguments: {name!r}"
        raise ArgsError(msg, f"args.{name}")
    return {}


def check_changes(args: Mapping[str, Any]) -> dict[str, Any]:
    """A partial configuration (``UpdateConfig``'s arguments): each setting checked alone.

    ``None`` removes a setting. The server checks the merged configuration again before
    it becomes a version.
    """
    if not args:
        msg = "UpdateConfig needs at least one setting to change"
        raise ArgsError(msg)
    for name, value in args.items():
        if value is None:
            continue
        try:
            check_settings({name: value})
        except ConfigError as error:
            raise ArgsError(str(error), f"args.{name}") from error
    return dict(args)


def check_args(kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` if a ``kind`` command can take them (as the API sends them), else ``ArgsError``."""
    if kind not in KINDS:
        msg = f"unknown command kind {kind!r}; one of {', '.join(KINDS)}"
        raise ArgsError(msg, "kind")
    if not isinstance(args, Mapping):
        msg = "args must be an object"
        raise ArgsError(msg)
    if kind == UPDATE_CONFIG:
        return check_changes(args)
    return _no_args(kind, args)


def check_wire_args(kind: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as signed for the station; ``UpdateConfig`` names the version to apply."""
    if kind != UPDATE_CONFIG:
        return check_args(kind, args)
    version = json_count(args.get("version"))
    changes = args.get("changes")
    if not version:
        msg = f"UpdateConfig needs the configuration version: {args.get('version')!r}"
        raise ArgsError(msg, "args.version")
    if not isinstance(changes, Mapping):
        msg = "UpdateConfig needs its changes"
        raise ArgsError(msg, "args.changes")
    return {"version": version, "changes": check_changes(changes)}


@dataclass(frozen=True)
class Command:
    """A command as signed for one device."""

    cmd_id: str
    device_id: str
    kind: str
    args: dict[str, Any]
    issued_at: int  # ms since the epoch, the server's clock
    expires_at: int

    def signed(self, key: SigningKey) -> bytes:
        """The ``cmd`` payload: an envelope holding the JWS."""
        body = {
            "cmd_id": self.cmd_id,
            "device_id": self.device_id,
            "kind": self.kind,
            "args": self.args,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }
        return wrap_signed(COMMAND_TYPE, self.device_id, body, key)


@dataclass(frozen=True)
class Refusal:
    """A ``cmd`` message the station will not run, and why.

    ``cmd_id`` is set only when the server's signature vouches for it (an expired command,
    one signed for another device, bad arguments); ``claimed_id`` is whatever id the
    message claimed, for the server's audit; ``expires_at`` (signed) bounds how long the
    refusal must be remembered.
    """

    detail: str
    cmd_id: str | None = None
    claimed_id: str = ""
    expires_at: int = 0


def _claimed_id(token: str) -> str:
    """The ``cmd_id`` an unverified token claims, for the record only (never trusted)."""
    try:
        body = token.split(".")[1]
        claimed = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        value = claimed.get("cmd_id") if isinstance(claimed, dict) else None
    except (IndexError, ValueError, orjson.JSONDecodeError):
        return ""
    return value[:64] if isinstance(value, str) else ""


def _uuid(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def read_command(
    payload: bytes, device_id: str, keys: Iterable[VerifyingKey], *, now_ms: int
) -> Command | Refusal:
    """The verified command in ``payload`` for ``device_id``, or why it is refused."""
    signed = unwrap_signed(
        payload, COMMAND_TYPE, device_id, keys, max_bytes=MAX_BYTES, what="command"
    )
    if isinstance(signed, str):
        return Refusal(signed)
    token, trusted = signed
    try:
        body = verify_envelope(token, trusted, now_ms=now_ms, leeway_ms=ACCEPT_LEEWAY_MS)
    except ExpiredError as error:
        return _refuse_expired(token, trusted, str(error))
    except SignatureError as error:
        return Refusal(f"signature: {error}", claimed_id=_claimed_id(token))
    cmd_id = _uuid(body.get("cmd_id"))
    expires_at = json_count(body.get("expires_at")) or 0
    if cmd_id is None:
        return Refusal(f"bad command id {body.get('cmd_id')!r}")
    if body.get("device_id") != device_id:  # signed for another device, re-wrapped
        detail = f"signed for {body.get('device_id')!r}, not {device_id!r}"
        return Refusal(detail, cmd_id, cmd_id, expires_at)
    kind, args = body.get("kind"), body.get("args")
    if not isinstance(kind, str) or not isinstance(args, dict):
        return Refusal("kind or args malformed", cmd_id, cmd_id, expires_at)
    try:
        checked = check_wire_args(kind, args)
    except ArgsError as error:
        return Refusal(f"{error.field}: {error}", cmd_id, cmd_id, expires_at)
    issued_at = json_count(body.get("issued_at")) or 0
    return Command(cmd_id, device_id, kind, checked, issued_at, expires_at)


def _refuse_expired(token: str, trusted: list[VerifyingKey], detail: str) -> Refusal:
    """An expired command: its id is genuine (the signature held), so the refusal names it."""
    body = verify(token, trusted)  # cannot fail: verify_envelope got past the signature
    cmd_id = _uuid(body.get("cmd_id"))
    return Refusal(detail, cmd_id, cmd_id or "", json_count(body.get("expires_at")) or 0)


@dataclass(frozen=True)
class Query:
    """The server asking a station what became of one command (signed like a command)."""

    cmd_id: str
    device_id: str
    cmd_expires_at: int  # the command's own expires_at: how long its refusal is kept
    issued_at: int  # ms since the epoch, the server's clock
    expires_at: int  # the query's: issued_at + QUERY_LIFE_MS

    def signed(self, key: SigningKey) -> bytes:
        """The ``cmd`` payload: an envelope of type ``command.query`` holding the JWS."""
        body = {
            "cmd_id": self.cmd_id,
            "device_id": self.device_id,
            "cmd_expires_at": self.cmd_expires_at,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }
        return wrap_signed(QUERY_TYPE, self.device_id, body, key)


@dataclass(frozen=True)
class QueryRefusal:
    """A ``command.query`` the station will not answer (unsigned, forged, stale), and why."""

    detail: str


def _is_query(payload: bytes) -> bool:
    """Whether a ``cmd`` message says it is a query (its envelope's type; checked later)."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("type") == QUERY_TYPE


def read_query(
    payload: bytes, device_id: str, keys: Iterable[VerifyingKey], *, now_ms: int
) -> Query | QueryRefusal:
    """The verified query in ``payload`` for ``device_id``, or why it is refused."""
    signed = unwrap_signed(payload, QUERY_TYPE, device_id, keys, max_bytes=MAX_BYTES, what="query")
    if isinstance(signed, str):
        return QueryRefusal(signed)
    token, trusted = signed
    try:
        body = verify_envelope(token, trusted, now_ms=now_ms)
    except SignatureError as error:  # ExpiredError included
        return QueryRefusal(f"signature: {error}")
    cmd_id = _uuid(body.get("cmd_id"))
    cmd_expires_at = json_count(body.get("cmd_expires_at"))
    if cmd_id is None or cmd_expires_at is None:
        return QueryRefusal("query: command id or expires_at malformed")
    if body.get("device_id") != device_id:
        return QueryRefusal(f"query signed for {body.get('device_id')!r}, not {device_id!r}")
    issued_at = json_count(body.get("issued_at")) or 0
    expires_at = json_count(body.get("expires_at")) or 0
    return Query(cmd_id, device_id, cmd_expires_at, issued_at, expires_at)


def read_cmd_message(
    payload: bytes, device_id: str, keys: Iterable[VerifyingKey], *, now_ms: int
) -> Command | Refusal | Query | QueryRefusal:
    """Whatever the server sent on the ``cmd`` topic: a command or a query, verified."""
    if _is_query(payload):
        return read_query(payload, device_id, keys, now_ms=now_ms)
    return read_command(payload, device_id, keys, now_ms=now_ms)


@dataclass(frozen=True)
class Result:
    """A station's answer about one command (``cmd/result``)."""

    device_id: str
    cmd_id: str | None  # None: the message could not be verified (see ``claimed_id``)
    state: StationState
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    at: int = 0  # ms since the epoch, the station's clock
    claimed_id: str = ""
    # Answered from the station's ledger for a second delivery of an id: it did not run again.
    repeat: bool = False

    def encode(self) -> bytes:
        """The ``cmd/result`` payload."""
        return encode(
            {
                "v": VERSION,
                "type": RESULT_TYPE,
                "device_id": self.device_id,
                "cmd_id": self.cmd_id,
                "state": self.state,
                "detail": self.detail[:MAX_DETAIL],
                "result": self.result,
                "at": self.at,
                "claimed_id": self.claimed_id[:64],
                "repeat": self.repeat,
            }
        )

    @classmethod
    def parse(cls, payload: bytes, device_id: str) -> Result | Drop:
        """An answer received on ``device_id``'s topic, or why it is dropped."""
        message = read_envelope(payload, RESULT_TYPE, device_id, max_bytes=MAX_BYTES)
        if isinstance(message, Drop):
            return message
        raw_id, state = message.get("cmd_id"), message.get("state")
        cmd_id = _uuid(raw_id)
        if raw_id is not None and cmd_id is None:
            return Drop(DropReason.MALFORMED, f"bad command id {raw_id!r}"[:300])
        if state not in STATION_STATES or (cmd_id is None and state != "rejected"):
            return Drop(DropReason.MALFORMED, f"bad command state {state!r}"[:300])
        detail, result = message.get("detail", ""), message.get("result", {})
        claimed, at = message.get("claimed_id", ""), json_count(message.get("at", 0))
        if not isinstance(detail, str) or not isinstance(result, dict) or at is None:
            return Drop(DropReason.MALFORMED, "command result: detail, result or at malformed")
        if len(orjson.dumps(result)) > MAX_RESULT_BYTES:
            return Drop(DropReason.TOO_LARGE, f"command result data over {MAX_RESULT_BYTES} B")
        claimed = claimed[:64] if isinstance(claimed, str) else ""
        repeat = message.get("repeat", False) is True
        return cls(device_id, cmd_id, state, detail[:MAX_DETAIL], result, at, claimed, repeat)
