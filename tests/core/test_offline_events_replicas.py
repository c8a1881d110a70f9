"""Offline periods written by two server replicas that hear the same transition at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.models import AuditEntry, OfflineEvent
from core.services import audit_checkpoints, offline_events
from core.services.offline_events import WENT_OFFLINE, WENT_ONLINE
from core.settings import Settings
from tests.mqtt.server import register

pytestmark = pytest.mark.backends("one")
ROUNDS = 12  # each round a fresh race; without the lock most rounds write twice
DEVICE = "press-07"


@pytest.fixture
async def replicas(
    database: Database, settings: Settings
) -> AsyncIterator[tuple[Database, Database]]:
    """The test's database and a second engine on it: two replicas, one PostgreSQL."""
    if database.dialect != "postgresql":
        pytest.skip("replicas share a PostgreSQL; SQLite serves one server")
    await register(database, [DEVICE])
    audit_key = audit_checkpoints.load_or_create_key(audit_checkpoints.key_path(settings))
    other = Database(settings.async_database_url, audit_key=audit_key)
    yield database, other
    await other.close()


Call = Callable[[Database], Awaitable[None]]


async def _race(replicas: tuple[Database, Database], call: Call) -> None:
    """Both replicas make the same call at once, each in a transaction of its own."""
    await asyncio.gather(*(call(replica) for replica in replicas))


def _begin(reason: str, *, first_news: bool = False) -> Call:
    async def call(replica: Database) -> None:
        async with replica.session() as session:
            at = datetime.now(UTC)
            await offline_events.begin(
                session, device_id=DEVICE, reason=reason, at=at, first_news=first_news
            )

    return call


def _end(*, first_news: bool = False) -> Call:
    async def call(replica: Database) -> None:
        async with replica.session() as session:
            at = datetime.now(UTC)
            await offline_events.end(session, device_id=DEVICE, at=at, first_news=first_news)

    return call


async def _written(database: Database) -> tuple[int, int, list[str]]:
    """Open periods, all periods, and the presence entries' actions, oldest first."""
    async with database.session() as session:
        still_open = await session.scalar(
            select(func.count()).where(OfflineEvent.ended_at.is_(None))
        )
        every = await session.scalar(select(func.count()).select_from(OfflineEvent))
        actions = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.action.in_([WENT_ONLINE, WENT_OFFLINE]))
            .order_by(AuditEntry.id)
        )
        return int(still_open or 0), int(every or 0), list(actions)


async def test_each_transition_is_written_once_across_replicas(
    replicas: tuple[Database, Database],
) -> None:
    """A will heard by both opens one period; a birth heard by both closes it, once."""
    await _race(replicas, _end(first_news=True))  # a new station, heard by both
    expected = [WENT_ONLINE]
    assert await _written(replicas[0]) == (0, 0, expected)
    for done in range(1, ROUNDS + 1):
        await _race(replicas, _begin("lost"))
        expected.append(WENT_OFFLINE)
        assert await _written(replicas[0]) == (1, done, expected)
        await _race(replicas, _end())
        expected.append(WENT_ONLINE)
        assert await _written(replicas[0]) == (0, done, expected)


async def test_a_stale_period_is_found_lost_once_across_replicas(
    replicas: tuple[Database, Database],
) -> None:
    """Both replicas see a stale device, then its will: one period, one entry for each."""
    expected: list[str] = []
    for done in range(1, ROUNDS + 1):
        await _race(replicas, _begin("stale"))
        await _race(replicas, _begin("lost"))
        expected += [WENT_OFFLINE, WENT_OFFLINE]
        assert await _written(replicas[0]) == (1, done, expected)
        async with replicas[0].session() as session:
            reasons = await session.scalars(select(OfflineEvent.reason))
            assert set(reasons) == {"lost"}
        await _race(replicas, _end())
        expected.append(WENT_ONLINE)
