"""Identity conflicts found by two server replicas at once: one audit entry per episode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry
from tests.webui.hand_clock import Clock
from webui.backbone import identity
from webui.backbone.identity import ACTION, ENDED, Identity, Sighting

pytestmark = pytest.mark.backends("one")

A = "a1" * 16
B = "b2" * 16
ROUNDS = 5  # episodes in a row; without the look at the log each is written twice


@pytest.fixture
def clock() -> Clock:
    """From the real now: audit entries carry real times."""
    return Clock(datetime.now(UTC))


@pytest.fixture
async def replicas(
    database: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Identity, Identity]]:
    """Two replicas' trackers writing to one audit log, each through its own connections."""
    monkeypatch.setattr(identity, "SWEEP_SECONDS", 3600)  # the test sweeps, on its clock
    both = (Identity(database, clock=clock), Identity(database, clock=clock))
    for tracker in both:
        await tracker.start()
    yield both
    for tracker in both:
        await tracker.stop()


def _hear(replicas: tuple[Identity, ...], clock: Clock, stream: str) -> None:
    """Every replica hears the same message (a birth, or a batch and its fan-out)."""
    at = clock.advance(1)
    for tracker in replicas:
        tracker.seen(Sighting("press-07", stream, at))


async def _actions(replicas: tuple[Identity, ...], database: Database) -> list[str]:
    await asyncio.gather(*(tracker.written() for tracker in replicas))
    async with database.session() as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.in_([ACTION, ENDED]))
            .order_by(AuditEntry.id)
        )
        return list(rows)


async def _episode(replicas: tuple[Identity, ...], clock: Clock) -> None:
    """A, B, A: a conflict; then A alone for longer than the window: its end."""
    for stream in (A, B, A, B):
        _hear(replicas, clock, stream)
    clock.advance(replicas[0].window.total_seconds() + 1)
    _hear(replicas, clock, A)
    for tracker in replicas:
        tracker.sweep()
        assert tracker.conflict("press-07") is None


async def test_an_episode_both_replicas_find_is_audited_once(
    replicas: tuple[Identity, Identity], clock: Clock, database: Database
) -> None:
    for done in range(1, ROUNDS + 1):
        await _episode(replicas, clock)
        assert await _actions(replicas, database) == [ACTION, ENDED] * done


async def test_a_replica_that_finds_the_end_later_writes_no_second_end(
    replicas: tuple[Identity, Identity], clock: Clock, database: Database
) -> None:
    first, second = replicas
    for stream in (A, B, A):
        _hear(replicas, clock, stream)
    clock.advance(first.window.total_seconds() + 1)
    first.sweep()  # the second's sweep comes a moment later
    assert await _actions(replicas, database) == [ACTION, ENDED]
    second.sweep()
    assert await _actions(replicas, database) == [ACTION, ENDED]


async def test_a_start_left_open_by_a_stopped_server_does_not_hide_a_new_episode(
    clock: Clock, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "SWEEP_SECONDS", 3600)
    stopped = Identity(database, clock=clock)
    await stopped.start()
    for stream in (A, B, A):
        _hear((stopped,), clock, stream)
    await stopped.stop()  # mid-episode: its end is never written
    restarted = Identity(database, clock=clock)
    await restarted.start()
    clock.advance(3 * restarted.window.total_seconds())
    for stream in (A, B, A):
        _hear((restarted,), clock, stream)
    assert await _actions((restarted,), database) == [ACTION, ACTION]
    await restarted.stop()


async def test_a_replica_slow_to_write_the_start_writes_none_after_the_end(
    replicas: tuple[Identity, Identity], clock: Clock, database: Database
) -> None:
    """The second replica's start comes after the first wrote the episode's start and end."""
    first, second = replicas
    heard = [Sighting("press-07", stream, clock.advance(1)) for stream in (A, B, A)]
    for sighting in heard:
        first.seen(sighting)
    clock.advance(first.window.total_seconds() + 1)
    first.sweep()
    assert await _actions(replicas, database) == [ACTION, ENDED]
    for sighting in heard:  # the same messages, written down late
        second.seen(sighting)
    second.sweep()
    assert await _actions(replicas, database) == [ACTION, ENDED]
