"""Telemetry batches: every vector of the shared protocol file, limits, encoding, fuzzing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol.telemetry import (
    Batch,
    Drop,
    DropReason,
    Limits,
    QuarantineReason,
    Sample,
    encode_batch,
    parse_batch,
    value_type,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "telemetry-vectors.json").read_text()
)["vectors"]


def _payload(vector: dict[str, Any]) -> bytes:
    """A string payload is sent as those exact bytes; anything else as compact JSON."""
    payload = vector["payload"]
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def _rows(batch: Batch) -> list[dict[str, Any]]:
    return [
        {"seq": s.seq, "channel": c, "type": value_type(v), "value": v}
        for s in batch.samples
        for c, v in s.values.items()
    ]


def _expected_rows(vector: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for row in vector.get("stored", []):
        value = Decimal(row["value"]) if row["type"] == "decimal" else row["value"]
        rows.append({**row, "value": value})
    return rows


def _scales(rows: list[dict[str, Any]]) -> list[object]:
    """Decimal exponents (scale), which == on Decimal ignores; None for other types."""
    return [r["value"].as_tuple().exponent if r["type"] == "decimal" else None for r in rows]


def test_vector_file_is_the_shared_one() -> None:
    """The copy in tests/data is the contract's file, not a drifted edit."""
    assert len(VECTORS) >= 28
    assert {v["expect"] for v in VECTORS} == {"store", "drop", "quarantine", "partial"}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    """The parser's outcome is exactly what the vector expects."""
    outcome = parse_batch(_payload(vector), vector["topic_device"])
    if vector["expect"] == "drop":
        assert isinstance(outcome, Drop)
        assert outcome.reason == vector["reason"]
        return
    assert isinstance(outcome, Batch)
    payload = vector["payload"]
    assert (outcome.device_id, outcome.stream, outcome.origin) == (
        payload["device_id"],
        payload["stream"],
        payload["origin"],
    )
    rows, expected = _rows(outcome), _expected_rows(vector)
    assert rows == expected
    assert [type(r["value"]) for r in rows] == [type(r["value"]) for r in expected]
    assert _scales(rows) == _scales(expected)
    quarantined_seqs = {"store": [], "partial": vector.get("quarantined_seqs")}.get(
        vector["expect"], [s["seq"] for s in payload["samples"]]
    )
    assert [q.seq for q in outcome.quarantined] == quarantined_seqs
    assert {q.reason for q in outcome.quarantined} == (
        {vector["reason"]} if quarantined_seqs else set()
    )


def _message(samples: list[Any], **envelope: Any) -> bytes:
    body = {"v": 1, "type": "telemetry", "device_id": "d1", "stream": "s1", "origin": "live"}
    return json.dumps({**body, **envelope, "samples": samples}).encode()


def test_limits() -> None:
    """Payload size and sample count drop the message; channel count quarantines a sample."""
    limits = Limits(max_payload_bytes=2000, max_samples=3, max_channels=2)
    samples = [{"seq": n, "ts": 0, "values": {"a": 1}} for n in range(1, 5)]
    too_many = parse_batch(_message(samples), "d1", limits=limits)
    assert isinstance(too_many, Drop) and too_many.reason is DropReason.TOO_MANY_SAMPLES
    big = parse_batch(
        _message([{"seq": 1, "ts": 0, "values": {"a": "1" * 2000}}]), "d1", limits=limits
    )
    assert isinstance(big, Drop) and big.reason is DropReason.TOO_LARGE
    wide = parse_batch(
        _message([{"seq": 1, "ts": 0, "values": {"a": 1, "b": 2, "c": 3}}]), "d1", limits=limits
    )
    assert isinstance(wide, Batch)
    assert [q.reason for q in wide.quarantined] == [QuarantineReason.TOO_MANY_CHANNELS]
    with pytest.raises(ValueError, match="max_samples"):
        Limits(max_samples=0)


def test_default_limits_match_the_design() -> None:
    """256 KiB, 1,000 samples, 256 channels."""
    assert Limits() == Limits(max_payload_bytes=262_144, max_samples=1000, max_channels=256)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('"1e5"', None),
        ('"+1"', QuarantineReason.BAD_VALUE),
        ('" 1"', QuarantineReason.BAD_VALUE),
        ('"1_000"', QuarantineReason.BAD_VALUE),
        ('"Infinity"', QuarantineReason.BAD_VALUE),
        ('"1e131071"', None),
        ('"1e131072"', QuarantineReason.BAD_VALUE),
        ('"1e-16383"', None),
        ('"1e-16384"', QuarantineReason.BAD_VALUE),
        ("1e999", QuarantineReason.BAD_VALUE),
        ("-9223372036854775808", None),
        ("-9223372036854775809", QuarantineReason.BAD_VALUE),
        ("[1]", QuarantineReason.BAD_VALUE),
    ],
)
def test_value_edges(raw: str, reason: QuarantineReason | None) -> None:
    """Only JSON-number syntax in ASCII digits, finite, storable as BIGINT or NUMERIC."""
    payload = (
        b'{"v":1,"type":"telemetry","device_id":"d1","stream":"s1","origin":"live",'
        b'"samples":[{"seq":1,"ts":0,"values":{"x":' + raw.encode() + b"}}]}"
    )
    outcome = parse_batch(payload, "d1")
    assert isinstance(outcome, Batch)
    assert [q.reason for q in outcome.quarantined] == ([reason] if reason else [])


@pytest.mark.parametrize(
    "envelope",
    [{"v": True}, {"v": 1.0}, {"origin": "later"}, {"stream": ""}, {"device_id": 7}],
)
def test_envelope_edges_are_malformed(envelope: dict[str, Any]) -> None:
    """A bool or float version, unknown origin, empty stream, non-string device id."""
    outcome = parse_batch(_message([{"seq": 1, "ts": 0, "values": {"a": 1}}], **envelope), "d1")
    assert isinstance(outcome, Drop) and outcome.reason is DropReason.MALFORMED


def test_quarantined_sample_keeps_its_raw_values() -> None:
    """Admins see what the station sent."""
    outcome = parse_batch(_message([{"seq": 3, "ts": 5, "values": {"t": None}}]), "d1")
    assert isinstance(outcome, Batch)
    (q,) = outcome.quarantined
    assert (q.seq, q.ts, q.reason, q.raw) == (3, 5, QuarantineReason.BAD_VALUE, '{"t":null}')
    assert "'t'" in q.detail


def test_encode_round_trip_keeps_types_and_scale() -> None:
    """What a publisher encodes is parsed back to the same samples."""
    samples = [
        Sample(1, 1764170000123, {"temp": Decimal("41.3750"), "parts": 3, "door": True}),
        Sample(2, 1764170000223, {"tiny": Decimal("1E-7"), "neg": Decimal("-0.0100")}),
    ]
    payload = encode_batch(device_id="press-07", stream="s-1", origin="replay", samples=samples)
    outcome = parse_batch(payload, "press-07")
    assert outcome == Batch("press-07", "s-1", "replay", tuple(samples))
    assert isinstance(outcome, Batch)
    assert outcome.samples[0].values["temp"].as_tuple().exponent == -4  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seq": 0, "ts": 0, "values": {"a": 1}}, "seq"),
        ({"seq": True, "ts": 0, "values": {"a": 1}}, "seq"),
        ({"seq": 1, "ts": -1, "values": {"a": 1}}, "ts"),
        ({"seq": 1, "ts": 0, "values": {}}, "no values"),
        ({"seq": 1, "ts": 0, "values": {"A": 1}}, "channel name"),
        ({"seq": 1, "ts": 0, "values": {"a": 2**63}}, "int64"),
        ({"seq": 1, "ts": 0, "values": {"a": Decimal("NaN")}}, "finite"),
        ({"seq": 1, "ts": 0, "values": {"a": 1.5}}, "float"),
    ],
)
def test_sample_validates(kwargs: dict[str, Any], match: str) -> None:
    """A publisher cannot build a sample the server would refuse."""
    with pytest.raises(ValueError, match=match):
        Sample(**kwargs)


def test_encode_refuses_a_bad_envelope() -> None:
    """Bad device id, stream or origin never reach the wire."""
    sample = Sample(1, 0, {"a": 1})
    with pytest.raises(ValueError, match="device id"):
        encode_batch(device_id="a b", stream="s", origin="live", samples=[sample])
    with pytest.raises(ValueError, match="stream"):
        encode_batch(device_id="d", stream="s s", origin="live", samples=[sample])
    with pytest.raises(ValueError, match="at least one"):
        encode_batch(device_id="d", stream="s", origin="live", samples=[])


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
SAMPLE = st.fixed_dictionaries(
    {},
    optional={
        "seq": st.integers(min_value=-2, max_value=2**64) | JSON,
        "ts": st.integers(min_value=-2, max_value=2**64) | JSON,
        "values": st.dictionaries(st.text(max_size=70), JSON, max_size=5) | JSON,
    },
)
ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, True, 1.0, "1"]),
        "type": st.sampled_from(["telemetry", "heartbeat", 1]),
        "device_id": st.sampled_from(["d1", "d2", 1]),
        "stream": st.sampled_from(["s1", "", "a b", None]),
        "origin": st.sampled_from(["live", "replay", "x"]),
        "samples": st.lists(SAMPLE, max_size=4) | JSON,
        "extra": JSON,
    },
)


def _never_raises(payload: bytes) -> Batch | Drop:
    outcome = parse_batch(payload, "d1", limits=Limits(max_samples=3, max_channels=3))
    assert isinstance(outcome, Batch | Drop)
    if isinstance(outcome, Batch):
        assert all(value_type(v) for s in outcome.samples for v in s.values.values())
    return outcome


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    """Whatever arrives on a telemetry topic, the parser answers Drop or Batch."""
    _never_raises(payload)


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=10), JSON, max_size=6) | JSON)
def test_arbitrary_json_never_raises(message: Any) -> None:
    """Any JSON document is dropped or attributed, never an exception."""
    _never_raises(json.dumps(message).encode())


@settings(max_examples=500)
@given(ENVELOPE)
def test_near_valid_envelopes_never_raise(message: dict[str, Any]) -> None:
    """Envelopes close to valid reach the sample and value checks, and still never raise."""
    _never_raises(json.dumps(message).encode())


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    """A payload nested past the recursion limit is just malformed."""
    outcome = parse_batch(b"[" * 100_000, "d1")
    assert isinstance(outcome, Drop) and outcome.reason is DropReason.MALFORMED


def test_dropped_ranges_round_trip_and_bad_ones_are_malformed() -> None:
    from core.protocol.telemetry import Gap

    sample = Sample(5, 1_764_170_000_000, {"t": 1})
    payload = encode_batch(
        device_id="d", stream="s", origin="replay", samples=[sample], gaps=[Gap(1, 4)]
    )
    batch = parse_batch(payload, "d")
    assert isinstance(batch, Batch) and batch.gaps == (Gap(1, 4, "outbox_cap"),)
    assert batch.gaps[0].count == 4
    message = json.loads(payload)
    for dropped in (
        {"first_seq": 4, "last_seq": 1},
        {"first_seq": 0, "last_seq": 1},
        {"first_seq": "1", "last_seq": 2},
        {"first_seq": 1, "last_seq": 2, "reason": "Bad Reason"},
        "1-4",
    ):
        bad = json.dumps({**message, "dropped": [dropped]}).encode()
        outcome = parse_batch(bad, "d")
        assert isinstance(outcome, Drop) and outcome.reason is DropReason.MALFORMED, dropped
    too_many = json.dumps({**message, "dropped": [{"first_seq": 1, "last_seq": 1}] * 101})
    assert isinstance(parse_batch(too_many.encode(), "d"), Drop)
