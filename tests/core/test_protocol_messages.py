"""Acks, presence and heartbeats: encode → parse round trips; bad input is a Drop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.protocol.drops import Drop, DropReason
from core.protocol.messages import Ack, Heartbeat, Status


def test_round_trips() -> None:
    ack = Ack("press-07", "s1", 42)
    assert Ack.parse(ack.encode(), "press-07") == ack
    for status in (
        Status("press-07", "online"),
        Status("press-07", "offline", "lost"),
        Status("press-07", "offline", "clean"),
        Status("press-07", "online", stream="3f2c"),
        Status("press-07", "offline", "lost", "3f2c"),
    ):
        assert Status.parse(status.encode(), "press-07") == status
    beat = Heartbeat("press-07", 5, uptime_s=60, outbox=12, config_version=3)
    assert Heartbeat.parse(beat.encode(), "press-07") == beat


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"nope", DropReason.MALFORMED),
        (b"[]", DropReason.MALFORMED),
        (
            b'{"v":2,"type":"status","device_id":"d","state":"online"}',
            DropReason.UNSUPPORTED_VERSION,
        ),
        (
            b'{"v":true,"type":"status","device_id":"d","state":"online"}',
            DropReason.UNSUPPORTED_VERSION,
        ),
        (b'{"v":1,"type":"status","device_id":"e","state":"online"}', DropReason.DEVICE_MISMATCH),
        (b'{"v":1,"type":"heartbeat","device_id":"d","state":"online"}', DropReason.MALFORMED),
        (b'{"v":1,"type":"status","device_id":"d","state":"offline"}', DropReason.MALFORMED),
        (
            b'{"v":1,"type":"status","device_id":"d","state":"away","reason":"lost"}',
            DropReason.MALFORMED,
        ),
        (
            b'{"v":1,"type":"status","device_id":"d","state":"online","stream":7}',
            DropReason.MALFORMED,
        ),
        (b" " * 20_000, DropReason.TOO_LARGE),
    ],
)
def test_bad_status_is_dropped_with_its_reason(payload: bytes, reason: DropReason) -> None:
    outcome = Status.parse(payload, "d")
    assert isinstance(outcome, Drop) and outcome.reason is reason


@pytest.mark.parametrize(
    "fields",
    [
        '"interval_s":0',
        '"interval_s":5,"outbox":-1',
        '"interval_s":5,"uptime_s":"60"',
        '"interval_s":5000',
        '"interval_s":true',
    ],
)
def test_bad_heartbeat_fields_are_dropped(fields: str) -> None:
    payload = f'{{"v":1,"type":"heartbeat","device_id":"d",{fields}}}'.encode()
    outcome = Heartbeat.parse(payload, "d")
    assert isinstance(outcome, Drop) and outcome.reason is DropReason.MALFORMED


def test_an_ack_needs_a_stream_and_a_count() -> None:
    for body in ('"stream":"","acked_seq":1', '"stream":"s","acked_seq":-1', '"stream":"s"'):
        payload = f'{{"v":1,"type":"telemetry.ack","device_id":"d",{body}}}'.encode()
        assert isinstance(Ack.parse(payload, "d"), Drop)


@given(st.binary(max_size=300))
def test_parsers_never_raise(payload: bytes) -> None:
    for parse in (Ack.parse, Status.parse, Heartbeat.parse):
        assert isinstance(parse(payload, "d"), Ack | Status | Heartbeat | Drop)
