"""A live page's first picture: the database's minutes and the hub's ring, each sample once."""

from __future__ import annotations

from decimal import Decimal

from core.services.telemetry.history import StoredSample
from webui.backbone.hub import Hub, LivePoint, Reading
from webui.components import backfill


def test_a_sample_in_both_the_database_and_the_hub_is_drawn_once() -> None:
    stored = [StoredSample(1000, {"temp": Decimal("20.5")}, False)]
    stored.append(StoredSample(2000, {"temp": Decimal(21)}, True))
    live = [
        LivePoint(7, 2000, {"temp": Decimal(21)}, True),  # committed before the page read
        LivePoint(8, 3000, {"temp": Decimal(22)}, False),  # committed after
    ]
    drawn = backfill.fill(stored, live)
    assert [(p.ts_ms, p.replayed) for p in drawn] == [(1000, False), (2000, True), (3000, False)]


def test_latest_prefers_the_hub_and_falls_back_to_the_database() -> None:
    stored = [
        StoredSample(1000, {"temp": Decimal(20), "door": True}, False),
        StoredSample(2000, {"temp": Decimal(21)}, False),
    ]
    hub = Hub()
    assert backfill.latest(stored, hub.latest("kiln-1")) == {
        "door": Reading(True, 1000),
        "temp": Reading(Decimal(21), 2000),
    }
    live = {"temp": Reading(Decimal(25), 3000)}
    assert backfill.latest(stored, live)["temp"] == Reading(Decimal(25), 3000)
