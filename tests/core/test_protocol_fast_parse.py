"""parse_batch reads clean messages with orjson and everything else the exact way: both
must give the same answer for any payload, drops and quarantine included."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol.telemetry import DEFAULT_LIMITS, _parse_exactly, parse_batch

DEVICE = "press-07"

# Values as stations send them, and as they should not: ints at and past int64, floats,
# decimal strings good and bad, booleans, nulls, nested junk.
_values = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**63 - 1, -(2**63), 2**63, True, False, None]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["41.3750", "41", "-0.0", "1E+5", "x", "", "NaN", "1" * 40]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.lists(st.integers(), max_size=2),
)
_channels = st.one_of(
    st.sampled_from(["temp", "parts", "door_open", "a.b-c_1"]),
    st.text(max_size=6),
)
_samples = st.lists(
    st.fixed_dictionaries(
        {
            "seq": st.one_of(st.integers(min_value=-1, max_value=2**63), st.floats(0, 9)),
            "ts": st.integers(min_value=-1, max_value=2**45),
            "values": st.dictionaries(_channels, _values, max_size=4),
        }
    ),
    min_size=0,
    max_size=4,
)
_messages = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, 1.0]),
        "type": st.sampled_from(["telemetry", "telemetry", "status"]),
        "device_id": st.sampled_from([DEVICE, DEVICE, "other"]),
        "stream": st.sampled_from(["s1", "s1", "bad stream", 5]),
        "origin": st.sampled_from(["live", "replay", "later"]),
        "samples": _samples,
    },
    optional={
        "dropped": st.lists(
            st.fixed_dictionaries({"first_seq": st.integers(0, 9), "last_seq": st.integers(0, 9)}),
            max_size=2,
        )
    },
)


def _same(payload: bytes) -> None:
    fast = parse_batch(payload, DEVICE)
    exact = _parse_exactly(payload, DEVICE, DEFAULT_LIMITS)
    assert repr(fast) == repr(exact)  # repr: Decimal('41.3750') is not Decimal('41.375')


@settings(max_examples=400, deadline=None)
@given(_messages)
def test_any_message_parses_the_same_both_ways(message: dict[str, object]) -> None:
    _same(json.dumps(message).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_the_same_both_ways(payload: bytes) -> None:
    _same(payload)


def test_edge_payloads_parse_the_same_both_ways() -> None:
    base = '{"v":1,"type":"telemetry","device_id":"press-07","stream":"s1","origin":"live",'
    for samples in (
        '"samples":[{"seq":1,"ts":0,"values":{"a":1.0}}]}',
        '"samples":[{"seq":1,"ts":0,"values":{"a":1E400}}]}',
        '"samples":[{"seq":1,"ts":0,"values":{"a":NaN}}]}',
        '"samples":[{"seq":1,"ts":0,"values":{"a":1,"a":2}}]}',
        '"samples":[{"seq":1,"ts":0,"values":{"a":"\\ud800"}}]}',
        '"samples":[{"seq":1,"ts":0,"values":{"a":123456789012345678901234567890}}]}',
        '"samples":[{"seq":1,"ts":0,"values":{"a":0.1,"b":-0.0,"c":5e-324}}]}',
    ):
        _same((base + samples).encode())
    _same(b"\xef\xbb\xbf" + (base + '"samples":[{"seq":1,"ts":0,"values":{"a":1}}]}').encode())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_fields = ["v", "type", "device_id", "stream", "origin", "samples", "dropped"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_fields), _json, st.sampled_from(["seq", "ts", "values", "first_seq", "reason"])
)
def test_no_json_in_any_field_makes_the_parser_raise(field: str, junk: object, inner: str) -> None:
    """A forged message is a drop or a quarantine, never an exception (it would reach the
    receive loop): any JSON value in any envelope field, or in a sample's or gap's fields."""
    message: dict[str, object] = {
        "v": 1,
        "type": "telemetry",
        "device_id": DEVICE,
        "stream": "s1",
        "origin": "live",
        "samples": [{"seq": 1, "ts": 0, "values": {"a": 1}}],
        "dropped": [{"first_seq": 1, "last_seq": 1}],
    }
    message[field] = junk
    _same(json.dumps(message).encode())
    nested = dict(message, samples=[{"seq": 1, "ts": 0, "values": {"a": 1}, inner: junk}])
    nested["dropped"] = [{"first_seq": 1, "last_seq": 1, inner: junk}]
    _same(json.dumps(nested).encode())
