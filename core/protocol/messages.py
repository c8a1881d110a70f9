"""Protocol v1 messages other than telemetry batches: acks, presence and heartbeats.

Each has an ``encode`` (compact JSON bytes) and a ``parse`` that never raises: it returns
the message or a ``Drop`` for the drop counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from core.protocol.drops import Drop, DropReason
from core.protocol.signing import SigningKey, VerifyingKey, sign
from core.protocol.topics import check_device_id

VERSION = 1
MAX_BYTES = 16 * 1024  # acks, presence and heartbeats are tiny; anything bigger is abuse
State = Literal["online", "offline"]
OfflineReason = Literal["clean", "lost"]
MAX_STREAM = 64  # a stream id is 32 hex digits; anything much longer is not one


def encode(message: dict[str, Any]) -> bytes:
    """A message as compact UTF-8 JSON."""
    return orjson.dumps(message)


def read_envelope(
    payload: bytes, kind: str, device_id: str, *, max_bytes: int = MAX_BYTES
) -> dict[str, Any] | Drop:
    """The JSON object of a ``kind`` message for ``device_id``, or why it is dropped."""
    if len(payload) > max_bytes:
        return Drop(DropReason.TOO_LARGE, f"{len(payload)} bytes > {max_bytes}")
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        return Drop(DropReason.MALFORMED, f"not UTF-8 JSON: {str(error)[:200]}")
    if not isinstance(message, dict):
        return Drop(DropReason.MALFORMED, "payload is not a JSON object")
    if message.get("v") != VERSION or type(message.get("v")) is not int:
        return Drop(DropReason.UNSUPPORTED_VERSION, f"v {message.get('v')!r} is not supported")
    if message.get("type") != kind:
        return Drop(DropReason.MALFORMED, f"type must be {kind!r}: {message.get('type')!r}")
    if message.get("device_id") != device_id:
        detail = f"envelope names {message.get('device_id')!r} on {device_id!r}'s topic"
        return Drop(DropReason.DEVICE_MISMATCH, detail)
    return message


def wrap_signed(kind: str, device_id: str, body: Mapping[str, Any], key: SigningKey) -> bytes:
    """A ``kind`` message for ``device_id`` carrying ``body`` as a compact JWS signed by ``key``."""
    token = sign(body, key).decode("ascii")
    return encode({"v": VERSION, "type": kind, "device_id": device_id, "jws": token})


def unwrap_signed(
    payload: bytes,
    kind: str,
    device_id: str,
    keys: Iterable[VerifyingKey],
    *,
    max_bytes: int,
    what: str,
) -> tuple[str, list[VerifyingKey]] | str:
    """The JWS a ``kind`` message carries and the keys to check it with, or why not.

    ``what`` names the content for people. Only the envelope is read here; the caller
    verifies the token (its expiry rules differ).
    """
    message = read_envelope(payload, kind, device_id, max_bytes=max_bytes)
    if isinstance(message, Drop):
        return f"{message.reason.value}: {message.detail}"
    token = message.get("jws")
    if not isinstance(token, str):
        return f"no signed {what} in the message"
    trusted = list(keys)
    if not trusted:
        return "no trusted server key: give the station the server's public key"
    return token, trusted


def json_count(value: object) -> int | None:
    """A non-negative JSON integer, or None."""
    return value if type(value) is int and 0 <= value < 2**63 else None


def server_online(topic: object, payload: bytes) -> bool | Drop:
    """Whether the server's retained status (``server/status``) says it is online: empty
    (cleared) or any state but "online" reads as away. A route decoder."""
    if not payload:
        return False
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Drop(DropReason.MALFORMED, "server status is not JSON")
    return isinstance(message, dict) and message.get("state") == "online"


@dataclass(frozen=True)
class Ack:
    """The server's durable ack watermark of one stream."""

    device_id: str
    stream: str
    acked_seq: int
    TYPE = "telemetry.ack"

    def encode(self) -> bytes:
        """The ack as sent on ``telemetry/ack``."""
        return encode(
            {
                "v": VERSION,
                "type": self.TYPE,
                "device_id": check_device_id(self.device_id),
                "stream": self.stream,
                "acked_seq": self.acked_seq,
            }
        )

    @classmethod
    def parse(cls, payload: bytes, device_id: str) -> Ack | Drop:
        """Read an ack received on ``device_id``'s topic."""
        message = read_envelope(payload, cls.TYPE, device_id)
        if isinstance(message, Drop):
            return message
        stream, acked = message.get("stream"), json_count(message.get("acked_seq"))
        if not isinstance(stream, str) or not stream or acked is None:
            return Drop(DropReason.MALFORMED, "an ack needs a stream and a non-negative acked_seq")
        return cls(device_id, stream, acked)


@dataclass(frozen=True)
class Status:
    """A device's retained presence: online (birth) or offline, cleanly or lost (will).

    ``stream`` names the station instance (its outbox's stream) that says it: two
    instances behind one device identity show up as two streams (optional: "" when the
    sender does not say).
    """

    device_id: str
    state: State
    reason: OfflineReason | None = None
    stream: str = ""
    TYPE = "status"

    def __post_init__(self) -> None:
        if (self.state == "online") != (self.reason is None):
            msg = f"an offline status needs a reason and an online one none: {self}"
            raise ValueError(msg)

    def encode(self) -> bytes:
        """The status as published (retained) on ``status``."""
        message: dict[str, Any] = {
            "v": VERSION,
            "type": self.TYPE,
            "device_id": check_device_id(self.device_id),
            "state": self.state,
        }
        if self.reason is not None:
            message["reason"] = self.reason
        if self.stream:
            message["stream"] = self.stream
        return encode(message)

    @classmethod
    def parse(cls, payload: bytes, device_id: str) -> Status | Drop:
        """Read a status received on ``device_id``'s topic."""
        message = read_envelope(payload, cls.TYPE, device_id)
        if isinstance(message, Drop):
            return message
        state, reason, stream = (
            message.get("state"),
            message.get("reason"),
            message.get("stream", ""),
        )
        if not isinstance(stream, str) or len(stream) > MAX_STREAM:
            return Drop(DropReason.MALFORMED, f"bad status stream: {str(stream)[:80]!r}")
        if state == "online":
            return cls(device_id, "online", stream=stream)
        if state == "offline" and reason in ("clean", "lost"):
            return cls(device_id, "offline", reason, stream)
        return Drop(DropReason.MALFORMED, f"bad status: state={state!r} reason={reason!r}")


@dataclass(frozen=True)
class Heartbeat:
    """A device's periodic sign of life with what its station knows."""

    device_id: str
    interval_s: int  # the device's heartbeat period; stale after three missed
    uptime_s: int = 0
    outbox: int = 0  # samples waiting in the station's outbox
    config_version: int = 0  # the configuration version the station has applied
    TYPE = "heartbeat"

    def __post_init__(self) -> None:
        if not 1 <= self.interval_s <= 3600:
            msg = f"heartbeat interval must be 1-3600 s: {self.interval_s}"
            raise ValueError(msg)

    def encode(self) -> bytes:
        """The heartbeat as published on ``heartbeat``."""
        return encode(
            {
                "v": VERSION,
                "type": self.TYPE,
                "device_id": check_device_id(self.device_id),
                "interval_s": self.interval_s,
                "uptime_s": self.uptime_s,
                "outbox": self.outbox,
                "config_version": self.config_version,
            }
        )

    @classmethod
    def parse(cls, payload: bytes, device_id: str) -> Heartbeat | Drop:
        """Read a heartbeat received on ``device_id``'s topic."""
        message = read_envelope(payload, cls.TYPE, device_id)
        if isinstance(message, Drop):
            return message
        fields = {
            name: json_count(message.get(name, 0))
            for name in ("interval_s", "uptime_s", "outbox", "config_version")
        }
        interval = fields["interval_s"]
        if any(value is None for value in fields.values()) or not interval or interval > 3600:
            return Drop(DropReason.MALFORMED, f"bad heartbeat fields: {fields}")
        return cls(device_id, **{k: v for k, v in fields.items() if v is not None})
