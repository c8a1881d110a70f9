"""The live hub: what pages read since their cursor, bounded rings, latest values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.protocol.telemetry import Batch, Sample
from webui.backbone.hub import Hub


def _batch(origin: str, *samples: tuple[int, int, dict[str, object]]) -> Batch:
    made = tuple(Sample(seq, ts, values) for seq, ts, values in samples)  # type: ignore[arg-type]
    return Batch("kiln-1", "s1", origin, made)  # type: ignore[arg-type]


def test_a_reader_gets_each_sample_once_in_arrival_order() -> None:
    hub = Hub()
    assert hub.cursor("kiln-1") == 0 and hub.since("kiln-1", 0) == []
    hub.on_commit([_batch("live", (1, 1000, {"temp": Decimal("20.10")}))])
    first = hub.since("kiln-1", 0)
    assert [(p.n, p.ts_ms, p.replayed) for p in first] == [(1, 1000, False)]
    hub.on_commit([_batch("replay", (2, 500, {"temp": Decimal("19.00")}))])
    hub.on_commit([_batch("live", (3, 2000, {"temp": Decimal("21.50")}))])
    later = hub.since("kiln-1", first[-1].n)
    assert [(p.n, p.replayed) for p in later] == [(2, True), (3, False)]
    assert hub.since("kiln-1", later[-1].n) == []
    assert hub.since("other", 0) == []


def test_the_ring_keeps_only_the_latest_samples() -> None:
    hub = Hub(ring_samples=3)
    for seq in range(1, 11):
        hub.on_commit([_batch("live", (seq, seq * 1000, {"parts": seq}))])
    assert [p.values["parts"] for p in hub.since("kiln-1", 0)] == [8, 9, 10]
    assert [p.values["parts"] for p in hub.since("kiln-1", 8)] == [9, 10]
    assert hub.cursor("kiln-1") == 10


def test_an_old_replayed_value_never_replaces_a_newer_latest() -> None:
    hub = Hub()
    hub.on_commit([_batch("live", (5, 5000, {"temp": Decimal("21.50"), "door": True}))])
    hub.on_commit([_batch("replay", (1, 1000, {"temp": Decimal("18.00"), "parts": 3}))])
    latest = hub.latest("kiln-1")
    assert {k: (r.value, r.ts_ms) for k, r in latest.items()} == {
        "door": (True, 5000),
        "parts": (3, 1000),
        "temp": (Decimal("21.50"), 5000),
    }


def test_each_channel_takes_its_newest_value_from_a_batch_in_any_order() -> None:
    hub = Hub()
    hub.on_commit([_batch("live", (1, 1000, {"temp": 1}), (2, 3000, {"temp": 3}))])
    hub.on_commit(
        [
            _batch(
                "replay",
                (3, 4000, {"parts": 4, "door": False}),
                (4, 2000, {"temp": 2, "door": True}),  # older than the stored temp
                (5, 4000, {"parts": 5}),  # same time, later: it wins
                (6, 500, {"door": True}),
            )
        ]
    )
    latest = {k: (r.value, r.ts_ms) for k, r in hub.latest("kiln-1").items()}
    assert latest == {"temp": (3, 3000), "parts": (5, 4000), "door": (False, 4000)}


def test_a_ring_must_hold_something() -> None:
    with pytest.raises(ValueError, match="positive"):
        Hub(ring_samples=0)
