"""Protocol v1 topics: the only module that spells a topic string.

Builders take a device id and return the topic a message is published on; the
``ALL_*`` filters subscribe to one kind of topic for every device; ``parse`` maps a
received topic back to its device and kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "pp/v1"
_DEVICE_PREFIX = f"{ROOT}/dev/"
SERVER_STATUS = f"{ROOT}/server/status"
INGEST_GROUP = "pp-ingest"  # one group for every server replica, so each sample is taken once

# A device id is also its MQTT username; the API, services and topics all check this one.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_SHARE_GROUP = re.compile(r"[^/+#]+")


class Kind(StrEnum):
    """What a topic carries; the value is the topic's suffix after the device id."""

    TELEMETRY = "telemetry"
    TELEMETRY_REPLAY = "telemetry/replay"
    TELEMETRY_ACK = "telemetry/ack"
    STATUS = "status"
    HEARTBEAT = "heartbeat"
    CMD = "cmd"
    CMD_RESULT = "cmd/result"
    CONFIG_DESIRED = "config/desired"
    CONFIG_REPORTED = "config/reported"
    SYNC_UP = "sync/up"
    SYNC_DOWN = "sync/down"
    SERVER_STATUS = "server/status"

    @property
    def direction(self) -> Direction:
        """Who publishes this kind: the broker's ACL lets a device write only ``TO_SERVER``."""
        return Direction.TO_DEVICE if self in _SERVER_WRITES else Direction.TO_SERVER


class Direction(StrEnum):
    """Which way a kind of message travels."""

    TO_SERVER = "device → server"
    TO_DEVICE = "server → device"


# What only the server may publish: a device writing its own retained config/desired, a cmd
# or an ack would pass for the server (a forged configuration, a watermark that deletes
# unsent samples from its outbox).
_SERVER_WRITES = frozenset(
    {Kind.TELEMETRY_ACK, Kind.CMD, Kind.CONFIG_DESIRED, Kind.SYNC_DOWN, Kind.SERVER_STATUS}
)
_DEVICE_KINDS = {kind.value: kind for kind in Kind if kind is not Kind.SERVER_STATUS}


@dataclass(frozen=True)
class ParsedTopic:
    """A received topic read back: its device (None for server topics) and kind."""

    device_id: str | None
    kind: Kind


def is_device_id(device_id: str) -> bool:
    """Whether ``device_id`` is a valid device id (also the device's MQTT username)."""
    return _DEVICE_ID.fullmatch(device_id) is not None


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` unchanged, or raise ValueError if it is not a valid id."""
    if not is_device_id(device_id):
        msg = f"device id must match [A-Za-z0-9_-]{{1,64}}: {device_id!r}"
        raise ValueError(msg)
    return device_id


def device_topic(device_id: str, kind: Kind) -> str:
    """The topic of ``kind`` for one device."""
    if kind is Kind.SERVER_STATUS:
        msg = "server/status is not a device topic; use SERVER_STATUS"
        raise ValueError(msg)
    return f"{_DEVICE_PREFIX}{check_device_id(device_id)}/{kind.value}"


def device_kinds(direction: Direction) -> tuple[Kind, ...]:
    """The kinds of device topic that travel ``direction``, in declaration order."""
    return tuple(kind for kind in _DEVICE_KINDS.values() if kind.direction is direction)


def acl_device_pattern(kind: Kind, username_token: str = "%u") -> str:
    """A broker ACL pattern for one kind of topic of the device named by ``username_token``."""
    if kind is Kind.SERVER_STATUS:
        msg = "server/status is not a device topic; use SERVER_STATUS"
        raise ValueError(msg)
    return f"{_DEVICE_PREFIX}{username_token}/{kind.value}"


def device_may_publish(topic: str, device_id: str) -> bool:
    """Whether the device ``device_id`` may publish on ``topic`` (its own device → server kinds)."""
    parsed = parse(topic)
    return (
        parsed is not None
        and parsed.device_id == device_id
        and parsed.kind.direction is Direction.TO_SERVER
    )


def device_may_receive(topic: str, device_id: str) -> bool:
    """Whether ``topic`` may reach ``device_id``: its own server → device topics, server status."""
    parsed = parse(topic)
    if parsed is None or parsed.kind.direction is not Direction.TO_DEVICE:
        return False
    return parsed.device_id in (None, device_id)


def telemetry(device_id: str) -> str:
    """Live telemetry batches, device to server."""
    return device_topic(device_id, Kind.TELEMETRY)


def telemetry_replay(device_id: str) -> str:
    """Replayed telemetry batches from the outbox, device to server."""
    return device_topic(device_id, Kind.TELEMETRY_REPLAY)


def telemetry_ack(device_id: str) -> str:
    """The server's durable ack watermark, server to device."""
    return device_topic(device_id, Kind.TELEMETRY_ACK)


def status(device_id: str) -> str:
    """Retained birth / last-will presence, device to server."""
    return device_topic(device_id, Kind.STATUS)


def heartbeat(device_id: str) -> str:
    """Periodic heartbeat, device to server."""
    return device_topic(device_id, Kind.HEARTBEAT)


def cmd(device_id: str) -> str:
    """Signed commands, server to device."""
    return device_topic(device_id, Kind.CMD)


def cmd_result(device_id: str) -> str:
    """Command results, device to server."""
    return device_topic(device_id, Kind.CMD_RESULT)


def config_desired(device_id: str) -> str:
    """Retained signed desired config, server to device."""
    return device_topic(device_id, Kind.CONFIG_DESIRED)


def config_reported(device_id: str) -> str:
    """Retained applied config version and outcome, device to server."""
    return device_topic(device_id, Kind.CONFIG_REPORTED)


def sync_up(device_id: str) -> str:
    """Local changes, device to server."""
    return device_topic(device_id, Kind.SYNC_UP)


def sync_down(device_id: str) -> str:
    """Signed canonical changes, server to device."""
    return device_topic(device_id, Kind.SYNC_DOWN)


def all_devices(kind: Kind) -> str:
    """A subscription filter for ``kind`` from every device."""
    if kind is Kind.SERVER_STATUS:
        msg = "server/status is not a device topic; use SERVER_STATUS"
        raise ValueError(msg)
    return f"{_DEVICE_PREFIX}+/{kind.value}"


ALL_TELEMETRY = all_devices(Kind.TELEMETRY)
ALL_TELEMETRY_REPLAY = all_devices(Kind.TELEMETRY_REPLAY)
ALL_STATUS = all_devices(Kind.STATUS)
ALL_HEARTBEAT = all_devices(Kind.HEARTBEAT)
ALL_CMD_RESULT = all_devices(Kind.CMD_RESULT)
ALL_CONFIG_REPORTED = all_devices(Kind.CONFIG_REPORTED)
ALL_SYNC_UP = all_devices(Kind.SYNC_UP)


def shared(topic_filter: str, group: str = INGEST_GROUP) -> str:
    """``topic_filter`` as an MQTT 5 shared subscription, split among ``group``'s members."""
    if _SHARE_GROUP.fullmatch(group) is None:
        msg = f"share group must be non-empty and free of '/', '+', '#': {group!r}"
        raise ValueError(msg)
    if not topic_filter or topic_filter.startswith("$share/"):
        msg = f"not a plain topic filter: {topic_filter!r}"
        raise ValueError(msg)
    return f"$share/{group}/{topic_filter}"


def parse(topic: str) -> ParsedTopic | None:
    """The device and kind of a received topic, or None if it is not a protocol v1 topic."""
    if topic == SERVER_STATUS:
        return ParsedTopic(None, Kind.SERVER_STATUS)
    if not topic.startswith(_DEVICE_PREFIX):
        return None
    device_id, _, suffix = topic[len(_DEVICE_PREFIX) :].partition("/")
    kind = _DEVICE_KINDS.get(suffix)
    if kind is None or not is_device_id(device_id):
        return None
    return ParsedTopic(device_id, kind)
