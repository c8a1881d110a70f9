"""Protocol v1 topics: builders, server filters, shared subscriptions and the parser."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.protocol import topics
from core.protocol.topics import Kind, ParsedTopic

BUILDERS: list[tuple[Callable[[str], str], str, Kind]] = [
    (topics.telemetry, "telemetry", Kind.TELEMETRY),
    (topics.telemetry_replay, "telemetry/replay", Kind.TELEMETRY_REPLAY),
    (topics.telemetry_ack, "telemetry/ack", Kind.TELEMETRY_ACK),
    (topics.status, "status", Kind.STATUS),
    (topics.heartbeat, "heartbeat", Kind.HEARTBEAT),
    (topics.cmd, "cmd", Kind.CMD),
    (topics.cmd_result, "cmd/result", Kind.CMD_RESULT),
    (topics.config_desired, "config/desired", Kind.CONFIG_DESIRED),
    (topics.config_reported, "config/reported", Kind.CONFIG_REPORTED),
    (topics.sync_up, "sync/up", Kind.SYNC_UP),
    (topics.sync_down, "sync/down", Kind.SYNC_DOWN),
]


@pytest.mark.parametrize(
    ("build", "suffix", "kind"), BUILDERS, ids=lambda v: getattr(v, "__name__", None)
)
def test_builder_spells_the_design_topic_and_parses_back(
    build: Callable[[str], str], suffix: str, kind: Kind
) -> None:
    """Every builder gives the DESIGN table's topic, and parse reads it back."""
    topic = build("press-07")
    assert topic == f"pp/v1/dev/press-07/{suffix}"
    assert topics.parse(topic) == ParsedTopic("press-07", kind)


def test_server_status() -> None:
    """The server's presence topic is fixed and parses without a device."""
    assert topics.SERVER_STATUS == "pp/v1/server/status"
    assert topics.parse(topics.SERVER_STATUS) == ParsedTopic(None, Kind.SERVER_STATUS)


@pytest.mark.parametrize("device_id", ["", "a" * 65, "press 07", "a/b", "+", "#", "pr€ss", "a.b"])
def test_builders_refuse_bad_device_ids(device_id: str) -> None:
    """A device id outside [A-Za-z0-9_-]{1,64} could escape its ACL subtree."""
    with pytest.raises(ValueError, match="device id"):
        topics.telemetry(device_id)


def test_longest_device_id_is_accepted() -> None:
    """64 characters is the limit, inclusive."""
    assert topics.status("A_z-9" * 12 + "abcd").endswith("abcd/status")


def test_server_filters() -> None:
    """The server subscribes to one kind from every device with a single-level wildcard."""
    assert topics.ALL_TELEMETRY == "pp/v1/dev/+/telemetry"
    assert topics.ALL_TELEMETRY_REPLAY == "pp/v1/dev/+/telemetry/replay"
    assert topics.ALL_STATUS == "pp/v1/dev/+/status"
    assert topics.all_devices(Kind.CMD_RESULT) == "pp/v1/dev/+/cmd/result"
    with pytest.raises(ValueError, match="server/status"):
        topics.all_devices(Kind.SERVER_STATUS)


def test_shared_subscription() -> None:
    """Replicas split ingest through one $share group."""
    assert topics.shared(topics.ALL_TELEMETRY) == "$share/pp-ingest/pp/v1/dev/+/telemetry"
    assert topics.shared(topics.ALL_STATUS, group="g2") == "$share/g2/pp/v1/dev/+/status"
    for group in ["", "a/b", "+", "#"]:
        with pytest.raises(ValueError, match="share group"):
            topics.shared(topics.ALL_TELEMETRY, group=group)
    with pytest.raises(ValueError, match="plain topic filter"):
        topics.shared(topics.shared(topics.ALL_TELEMETRY))


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "pp/v1",
        "pp/v2/dev/press-07/telemetry",
        "pp/v1/dev/press-07",
        "pp/v1/dev/press-07/",
        "pp/v1/dev/press-07/telemetry/",
        "pp/v1/dev/press-07/telemetry/extra",
        "pp/v1/dev//telemetry",
        "pp/v1/dev/+/telemetry",
        "pp/v1/dev/bad id/telemetry",
        "pp/v1/dev/press-07/unknown",
        "pp/v1/server/status/x",
        "$share/pp-ingest/pp/v1/dev/press-07/telemetry",
        "other/press-07/telemetry",
    ],
)
def test_foreign_topics_parse_to_none(topic: str) -> None:
    """Anything that is not exactly a protocol v1 topic is foreign."""
    assert topics.parse(topic) is None
