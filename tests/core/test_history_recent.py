"""The last minutes of a device as stored: what a live chart shows of the time before it opened."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.db.engine import Database
from core.errors import ForbiddenError
from core.services.actor import Actor
from core.services.telemetry import history, store
from tests.core.history_data import ADMIN, DEVICE, T0, add_device, ms, samples


async def _recent(
    database: Database, since_s: float, actor: Actor = ADMIN
) -> list[history.StoredSample]:
    async with database.session() as session:
        return list(
            await history.recent(
                session, actor=actor, device_id=DEVICE, since=T0 + timedelta(seconds=since_s)
            )
        )


async def test_recent_samples_come_oldest_first_with_their_values_and_replay(
    database: Database,
) -> None:
    await add_device(database)
    await store.store(
        database,
        [
            samples([(0, {"temp": Decimal("20.50"), "door": True}), (1, {"temp": 21})]),
            samples([(2, {"temp": Decimal("22.25")})], origin="replay", first_seq=3),
        ],
    )
    assert await _recent(database, 1) == [
        history.StoredSample(ms(T0) + 1000, {"temp": 21}, False),
        history.StoredSample(ms(T0) + 2000, {"temp": Decimal("22.25")}, True),
    ]
    first = (await _recent(database, 0))[0]
    assert first == history.StoredSample(ms(T0), {"temp": Decimal("20.50"), "door": True}, False)


async def test_recent_keeps_the_newest_when_there_are_more(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_device(database)
    await store.store(database, [samples((n, {"temp": n}) for n in range(10))])
    monkeypatch.setattr(history, "RECENT_SAMPLES", 3)
    assert [s.values["temp"] for s in await _recent(database, 0)] == [7, 8, 9]


async def test_recent_needs_telemetry_read(database: Database) -> None:
    await add_device(database)
    with pytest.raises(ForbiddenError):
        await _recent(database, 0, Actor("nobody", permissions=frozenset()))
