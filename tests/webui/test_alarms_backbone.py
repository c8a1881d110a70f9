"""Alarms from committed samples: raised beyond a threshold, cleared inside, kept over a restart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from core.db.engine import Database
from core.protocol.telemetry import Batch, Sample, encode_batch
from core.services import alarms, audit, device_configs, devices
from core.services.actor import Actor
from core.services.telemetry.store import timestamp
from core.settings import Settings
from tests.mqtt.broker import RunningBroker, eventually
from tests.mqtt.server import register, running_backbone
from tests.webui.test_ingest import station
from webui.backbone.alarms import Alarms
from webui.backbone.thresholds import limits_of

ADMIN = Actor(
    name="ada",
    permissions=frozenset({"devices:read", "devices:write", "config:write"}),
)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T0 = 1_764_504_000_000  # ms: sample times of the tests below are T0 + n


async def _device(database: Database, thresholds: dict[str, Any] | None) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-1")
        if thresholds is not None:
            await _configure(session, thresholds)


async def _configure(session: Any, thresholds: dict[str, Any] | None) -> None:
    await device_configs.update_desired(
        session, actor=ADMIN, device_id="kiln-1", changes={"thresholds": thresholds}
    )


def _commit(checker: Alarms, *samples: tuple[int, dict[str, Any]], origin: str = "live") -> None:
    """Hand ``checker`` one commit of kiln-1 samples, (ms after T0, values) each."""
    taken = tuple(Sample(n + 1, T0 + dt, values) for n, (dt, values) in enumerate(samples))
    checker.on_commit([Batch("kiln-1", "s1", origin, taken)])  # type: ignore[arg-type]


@pytest.fixture
async def checker(database: Database) -> AsyncIterator[Alarms]:
    """kiln-1 with temp's high at 80.0 and low at 10, and the alarms started on it."""
    await _device(database, {"temp": {"high": "80.0", "low": 10}})
    checker = Alarms(database, clock=lambda: NOW)
    await checker.start()
    yield checker
    await checker.stop()


async def _state(checker: Alarms) -> list[tuple[str, str, Decimal, Decimal, int]]:
    """The active alarms pages see, once every transition so far is stored."""
    await checker.written()
    return [
        (a.channel, a.bound, a.threshold, a.value, _ms(a.raised_at))
        for a in checker.active("kiln-1")
    ]


def _ms(moment: datetime) -> int:
    return int((moment - timestamp(0)).total_seconds() * 1000) - T0


async def _cleared(database: Database) -> list[tuple[str, int, int, Decimal | None]]:
    async with database.session() as session:
        rows = await alarms.recent(session, actor=ADMIN, device_id="kiln-1")
    return [
        (r.bound, _ms(r.raised_at), _ms(r.cleared_at or NOW), r.clear_value) for r in rows[::-1]
    ]


async def test_crossing_raises_equal_does_not_return_clears_and_active_is_not_raised_again(
    checker: Alarms, database: Database
) -> None:
    changes: list[str] = []
    checker.changes.add(changes.append)
    _commit(checker, (1, {"temp": Decimal("80.0")}))  # equal is inside
    _commit(checker, (2, {"temp": Decimal("80.00")}))
    assert await _state(checker) == []
    _commit(checker, (3, {"temp": Decimal("80.01")}))
    assert await _state(checker) == [("temp", "high", Decimal("80.0"), Decimal("80.01"), 3)]
    _commit(checker, (4, {"temp": Decimal("95.5")}), (5, {"temp": 81}))  # still beyond
    assert await _state(checker) == [("temp", "high", Decimal("80.0"), Decimal("80.01"), 3)]
    _commit(checker, (6, {"temp": 80}))  # back inside, an integer against "80.0"
    assert await _state(checker) == []
    assert await _cleared(database) == [("high", 3, 6, Decimal(80))]
    _commit(checker, (7, {"temp": 9}))  # below the low
    assert await _state(checker) == [("temp", "low", Decimal(10), Decimal(9), 7)]
    assert changes == ["kiln-1"] * 3
    async with database.session() as session:
        actions = [(e.action, e.actor) for e in reversed(await audit.recent(session, limit=3))]
    assert actions == [
        ("alarm.raise", "device:kiln-1"),
        ("alarm.clear", "device:kiln-1"),
        ("alarm.raise", "device:kiln-1"),
    ]


async def test_booleans_and_other_channels_are_not_compared(
    checker: Alarms, database: Database
) -> None:
    _commit(checker, (1, {"temp": True, "door": False, "rpm": 10_000}))
    _commit(checker, (2, {"rpm": 1}))  # no temp at all: nothing changes
    assert await _state(checker) == []


async def test_a_commits_samples_are_checked_in_time_order(
    checker: Alarms, database: Database
) -> None:
    # Sent newest first: checked as 1 (beyond), 2 (beyond), 3 (inside).
    _commit(checker, (3, {"temp": 50}), (1, {"temp": 90}), (2, {"temp": 95}))
    assert await _state(checker) == []
    assert await _cleared(database) == [("high", 1, 3, Decimal(50))]


async def test_samples_older_than_the_newest_checked_do_not_change_the_state(
    checker: Alarms, database: Database
) -> None:
    _commit(checker, (100, {"temp": 90}))
    # Replayed history from before it, inside and beyond, and a duplicate: nothing moves.
    _commit(checker, (50, {"temp": 20}), (60, {"temp": 5}), origin="replay")
    _commit(checker, (99, {"temp": 20}))
    assert await _state(checker) == [("temp", "high", Decimal("80.0"), Decimal(90), 100)]
    _commit(checker, (100, {"temp": 20}))  # as new as the newest: it counts
    assert await _state(checker) == []
    _commit(checker, (70, {"temp": 95}), origin="replay")
    assert await _state(checker) == []
    assert await _cleared(database) == [("high", 100, 100, Decimal(20))]


async def test_removing_a_threshold_clears_its_alarm_with_the_reason(
    checker: Alarms, database: Database
) -> None:
    _commit(checker, (1, {"temp": 95}))
    assert len(await _state(checker)) == 1
    async with database.session() as session:
        await _configure(session, {"temp": {"low": 10}})  # the high goes, the low stays
    assert await _state(checker) == []
    assert await _cleared(database) == [("high", 1, _ms(NOW), None)]
    async with database.session() as session:
        entry = (await audit.recent(session, limit=1))[0]
    assert (entry.action, entry.actor) == ("alarm.clear", "server")
    assert entry.after is not None and entry.after["reason"] == "threshold removed"
    _commit(checker, (2, {"temp": 500}), (3, {"temp": 5}))  # only the low is watched now
    assert await _state(checker) == [("temp", "low", Decimal(10), Decimal(5), 3)]
    async with database.session() as session:
        await _configure(session, None)  # no thresholds at all
    assert await _state(checker) == []
    _commit(checker, (4, {"temp": -1}))
    assert await _state(checker) == []


async def test_active_alarms_survive_a_restart(checker: Alarms, database: Database) -> None:
    _commit(checker, (10, {"temp": 95}))
    assert len(await _state(checker)) == 1
    await checker.stop()

    again = Alarms(database)
    await again.start()
    try:
        assert await _state(again) == [("temp", "high", Decimal("80.0"), Decimal(95), 10)]
        _commit(again, (11, {"temp": 99}))  # still beyond: not raised twice
        _commit(again, (5, {"temp": 20}), origin="replay")  # older than what raised it
        assert len(await _state(again)) == 1
        _commit(again, (12, {"temp": 20}))
        assert await _state(again) == []
    finally:
        await again.stop()
    async with database.session() as session:
        assert len(await alarms.recent(session, actor=ADMIN, device_id="kiln-1")) == 1
        assert await alarms.active(session, actor=ADMIN) == []


async def test_a_failed_write_reads_the_state_again_and_the_next_sample_decides(
    checker: Alarms, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    raise_alarm = alarms.raise_alarm

    async def refused(*args: Any, **kwargs: Any) -> Any:
        msg = "database away"
        raise RuntimeError(msg)

    monkeypatch.setattr(alarms, "raise_alarm", refused)
    _commit(checker, (1, {"temp": 95}))  # ingest is not told: the commit stands
    assert await _state(checker) == []
    monkeypatch.setattr(alarms, "raise_alarm", raise_alarm)
    _commit(checker, (2, {"temp": 96}))
    assert await _state(checker) == [("temp", "high", Decimal("80.0"), Decimal(96), 2)]


def test_thresholds_are_read_exactly_from_the_configuration() -> None:
    settings = {"thresholds": {"temp": {"low": 0.1, "high": "80.50"}, "rpm": {"high": 9000}}}
    assert limits_of(settings) == {
        "temp": (Decimal("0.1"), Decimal("80.50")),
        "rpm": (None, Decimal(9000)),
    }
    assert limits_of({}) == limits_of({"thresholds": "junk"}) == {}


async def test_an_alarm_raised_and_cleared_through_the_real_ingest_path(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> None:
    """A station publishes over MQTT; the stored samples raise and clear the alarm."""
    await register(database, ["press-07"])
    async with database.session() as session:
        await device_configs.create(session, device_id="press-07")
    async with database.session() as session:
        await device_configs.update_desired(
            session,
            actor=ADMIN,
            device_id="press-07",
            changes={"thresholds": {"spindle_temp": {"high": "41.5"}}},
        )
    now = int(time.time() * 1000)

    def batch(seq: int, value: str) -> bytes:
        sample = Sample(seq, now + seq, {"spindle_temp": Decimal(value), "parts": seq})
        return encode_batch(device_id="press-07", stream="s1", origin="live", samples=[sample])

    async with (
        running_backbone(settings, database, mosquitto) as backbone,
        station(mosquitto, "press-07") as press,
    ):
        await press.publish(batch(1, "41.375"), replay=False)
        await eventually(lambda: press.acks.get("s1") == 1)
        await press.publish(batch(2, "41.625"), replay=False)
        await eventually(lambda: backbone.alarms.count("press-07") == 1)
        [alarm] = backbone.alarms.active("press-07")
        assert (alarm.channel, alarm.bound, alarm.value) == (
            "spindle_temp",
            "high",
            Decimal("41.625"),
        )
        await press.publish(batch(3, "41.500"), replay=False)  # equal: inside
        await eventually(lambda: backbone.alarms.count("press-07") == 0)
    async with database.session() as session:
        [past] = await alarms.recent(session, actor=ADMIN, device_id="press-07")
        trail = [(e.action, e.actor) for e in await audit.recent(session, limit=2)]
    assert (past.value, past.clear_value) == (Decimal("41.625"), Decimal("41.500"))
    assert past.raised_at == timestamp(now + 2)
    assert trail == [("alarm.clear", "device:press-07"), ("alarm.raise", "device:press-07")]
