"""Identity conflicts: two station instances taking turns for one device, on a test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry
from core.mqtt.takeover import Takeover
from tests.webui.hand_clock import Clock
from webui.backbone import identity
from webui.backbone.identity import Conflict, Identity, Sighting

# The audit rows are the database's business, not the rule's: PostgreSQL alone when it runs.
pytestmark = pytest.mark.backends("one")

A = "a1" * 16  # stream ids as stations make them: 32 hex digits
B = "b2" * 16
C = "c3" * 16
T0 = datetime(2025, 11, 26, 22, 41, 7, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def tracker(
    database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Identity]:
    monkeypatch.setattr(identity, "SWEEP_SECONDS", 3600)  # the test sweeps, on its clock
    tracker = Identity(database, clock=clock)
    await tracker.start()
    yield tracker
    await tracker.stop()


def _hear(tracker: Identity, clock: Clock, stream: str, after_s: float = 1) -> None:
    tracker.seen(Sighting("press-07", stream, clock.advance(after_s)))


async def _audited(tracker: Identity, database: Database) -> list[tuple[str, dict[str, object]]]:
    await tracker.written()
    async with database.session() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.like("device.identity_conflict%"))
            .order_by(AuditEntry.id)
        )
        return [(row.action, dict(row.after or {})) for row in rows]


async def test_two_streams_taking_turns_are_one_episode_audited_once(
    tracker: Identity, clock: Clock, database: Database
) -> None:
    events: list[Conflict] = []
    tracker.changes.add(events.append)
    _hear(tracker, clock, A)
    _hear(tracker, clock, B)
    assert tracker.conflict("press-07") is None  # a switch alone is no conflict
    _hear(tracker, clock, A)
    conflict = tracker.conflict("press-07")
    assert conflict is not None
    assert (conflict.since, conflict.streams, conflict.stations) == (clock.now, (A, B), 2)
    for _ in range(20):  # the fight goes on: still the same episode
        _hear(tracker, clock, B)
        _hear(tracker, clock, A)
    assert tracker.conflict("press-07") == conflict
    assert events == [conflict]
    assert tracker.conflict("lathe-1") is None
    audited = await _audited(tracker, database)
    assert [action for action, _ in audited] == ["device.identity_conflict"]
    assert audited[0][1]["streams"] == ["a1a1a1a1", "b2b2b2b2"]  # shortened


async def test_an_outbox_started_afresh_switches_streams_without_a_conflict(
    tracker: Identity, clock: Clock, database: Database
) -> None:
    for _ in range(5):
        _hear(tracker, clock, A)
    for _ in range(50):  # the old stream is never heard again
        _hear(tracker, clock, B)
        tracker.sweep()
    assert tracker.conflict("press-07") is None
    assert await _audited(tracker, database) == []


async def test_turns_further_apart_than_the_window_are_no_conflict(
    tracker: Identity, clock: Clock, database: Database
) -> None:
    window = tracker.window.total_seconds()
    _hear(tracker, clock, A)
    _hear(tracker, clock, B, after_s=window / 2)
    _hear(tracker, clock, A, after_s=window / 2 + 1)  # its previous message is too old
    assert tracker.conflict("press-07") is None


async def test_a_late_report_of_an_earlier_arrival_is_not_a_turn(
    tracker: Identity, clock: Clock, database: Database
) -> None:
    """A replayed batch parsed in a thread is reported after the live batch behind it."""
    _hear(tracker, clock, A)
    replay_arrived = clock.advance(1)
    _hear(tracker, clock, B)  # the new outbox's first live batch, reported first
    tracker.seen(Sighting("press-07", A, replay_arrived))
    _hear(tracker, clock, B)
    assert tracker.conflict("press-07") is None


async def test_the_episode_ends_after_a_window_of_one_stream_and_a_new_one_is_audited(
    tracker: Identity, clock: Clock, database: Database
) -> None:
    events: list[Conflict] = []
    tracker.changes.add(events.append)
    for stream in (A, B, A, B):
        _hear(tracker, clock, stream)
    started = tracker.conflict("press-07")
    assert started is not None
    window = tracker.window.total_seconds()
    for _ in range(int(window // 10) - 1):  # B alone, but A still within the window
        _hear(tracker, clock, B, after_s=10)
        tracker.sweep()
    assert tracker.conflict("press-07") == started
    _hear(tracker, clock, B, after_s=10)
    tracker.sweep()
    assert tracker.conflict("press-07") is None
    ended = events[-1]
    assert (ended.ended_at, ended.since, ended.streams) == (clock.now, started.since, (A, B))

    for stream in (C, B):  # a third instance comes and takes turns: a second episode
        _hear(tracker, clock, stream)
    again = tracker.conflict("press-07")
    assert again is not None and again.streams == (B, C) and again.since > started.since
    audited = await _audited(tracker, database)
    assert [action for action, _ in audited] == [
        "device.identity_conflict",
        "device.identity_conflict.ended",
        "device.identity_conflict",
    ]
    assert audited[1][1]["lasted_s"] == round((clock.now - started.since).total_seconds()) - 2


async def test_the_episode_ends_when_every_instance_falls_silent(
    tracker: Identity, clock: Clock
) -> None:
    for stream in (A, B, A):
        _hear(tracker, clock, stream)
    assert tracker.conflict("press-07") is not None
    clock.advance(tracker.window.total_seconds() + 1)
    tracker.sweep()
    assert tracker.conflict("press-07") is None
    assert tracker.conflicts() == []


async def test_messages_that_name_no_stream_say_nothing(tracker: Identity, clock: Clock) -> None:
    for stream in (A, "", A, "", A):
        _hear(tracker, clock, stream)
    assert tracker.conflict("press-07") is None


def test_the_window_outlasts_a_yielding_station_s_longest_wait() -> None:
    """A station that yields comes back within Takeover.cap: its turns stay one episode."""
    assert identity.WINDOW.total_seconds() >= 2 * Takeover().cap
