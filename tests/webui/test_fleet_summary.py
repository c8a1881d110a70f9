"""The overview's counts: presence by state, never-heard devices offline, backlogs that are news."""

from __future__ import annotations

from datetime import UTC, datetime

from webui.backbone.fleet_summary import (
    BACKLOG_FROM,
    Attention,
    attention,
    has_backlog,
    has_conflict,
    tally,
)
from webui.backbone.identity import Conflict
from webui.backbone.presence import DeviceState

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _state(device_id: str, status: str, outbox: int | None = None) -> DeviceState:
    reason = None if status == "online" else "lost"
    return DeviceState(device_id, status, reason, NOW, outbox=outbox)


def test_registered_devices_not_heard_count_as_offline_and_late_ones_count_too() -> None:
    states = [_state("a", "online"), _state("b", "stale"), _state("c", "offline")]
    counted = tally(states, {"a", "b", "c", "d", "e"})
    assert (counted.online, counted.stale, counted.offline, counted.total) == (1, 1, 3, 5)
    # heard of after the page read the registered ones: counted all the same
    assert tally([*states, _state("f", "online")], {"a"}).online == 2


def test_a_backlog_is_news_from_backlog_from_samples_on() -> None:
    assert not has_backlog(None)
    assert not has_backlog(_state("a", "online"))
    assert not has_backlog(_state("a", "online", outbox=BACKLOG_FROM - 1))  # in flight
    assert has_backlog(_state("a", "online", outbox=BACKLOG_FROM))


def test_attention_lists_backlogs_and_conflicts_the_most_queued_first() -> None:
    states = [
        _state("small", "online", outbox=BACKLOG_FROM),
        _state("big", "offline", outbox=50_000),
        _state("fine", "online", outbox=3),
    ]
    shared = [Conflict("twin", NOW, ("s1", "s2"))]
    assert attention(states, shared, {"synced": 2, "clean": 0}) == [
        Attention("big", 50_000, 0),
        Attention("small", BACKLOG_FROM, 0),
        Attention("twin", 0, 2),
        Attention("synced", 0, 0, sync_conflicts=2),
    ]


def test_a_conflict_is_stations_sharing_an_identity_or_sync_conflicts() -> None:
    sharing = Conflict("a", NOW, ("s1", "s2"))
    assert not has_conflict(None, 0)
    assert has_conflict(sharing, 0)
    assert has_conflict(None, 2)
