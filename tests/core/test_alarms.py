"""The alarms table: one active alarm per channel and bound, raised and cleared, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.db.engine import Database
from core.errors import ForbiddenError
from core.services import alarms, audit, devices
from core.services.actor import Actor

SHELL = Actor(name="shell", permissions=frozenset({"devices:write", "devices:read"}))
NOBODY = Actor(name="nobody")
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _register(database: Database, *ids: str) -> None:
    async with database.session() as session:
        for device_id in ids:
            await devices.create_device(session, actor=SHELL, device_id=device_id)


async def test_an_alarm_is_raised_once_and_cleared_once_and_both_are_audited(
    database: Database,
) -> None:
    await _register(database, "kiln-1")
    async with database.session() as session:
        raised = await alarms.raise_alarm(
            session,
            device_id="kiln-1",
            channel="temp",
            bound="high",
            threshold=Decimal("80.0"),
            value=Decimal("80.25"),
            at=T0,
        )
        again = await alarms.raise_alarm(  # still beyond: the same alarm, nothing new
            session,
            device_id="kiln-1",
            channel="temp",
            bound="high",
            threshold=Decimal("80.0"),
            value=Decimal("99"),
            at=T0 + timedelta(seconds=1),
        )
        assert again.id == raised.id
    async with database.session() as session:
        active = await alarms.active(session, actor=SHELL, device_id="kiln-1")
        assert [(a.channel, a.bound, a.threshold, a.value) for a in active] == [
            ("temp", "high", Decimal("80.0"), Decimal("80.25"))  # exact: scale kept
        ]
        assert active[0].raised_at == T0
        assert await alarms.counts(session, actor=SHELL) == {"kiln-1": 1}

    at = T0 + timedelta(seconds=5)
    async with database.session() as session:
        cleared = await alarms.clear_alarm(
            session, device_id="kiln-1", channel="temp", bound="high", at=at, value=Decimal("79")
        )
        assert cleared is not None
        nothing = await alarms.clear_alarm(
            session, device_id="kiln-1", channel="temp", bound="high", at=at, value=Decimal("78")
        )
        assert nothing is None  # no active alarm left to clear
    async with database.session() as session:
        assert await alarms.active(session, actor=SHELL) == []
        assert await alarms.counts(session, actor=SHELL) == {}
        [past] = await alarms.recent(session, actor=SHELL, device_id="kiln-1")
        assert (past.cleared_at, past.clear_value) == (at, Decimal("79"))
        entries = await audit.recent(session)
        report = await audit.verify_chain(session)
    trail = [(e.action, e.actor, e.target_id) for e in reversed(entries)]
    assert [t for t in trail if t[0].startswith("alarm.")] == [
        ("alarm.raise", "device:kiln-1", "kiln-1"),
        ("alarm.clear", "device:kiln-1", "kiln-1"),
    ]
    clear = next(e for e in entries if e.action == "alarm.clear")
    assert clear.after == {
        "cleared_at": at.isoformat(),
        "clear_value": "79",
        "reason": "back inside",
    }
    assert report.intact


async def test_a_server_clear_names_its_reason_and_each_bound_stands_alone(
    database: Database,
) -> None:
    await _register(database, "kiln-1", "kiln-2")
    async with database.session() as session:
        for device_id, bound in [("kiln-1", "low"), ("kiln-1", "high"), ("kiln-2", "high")]:
            await alarms.raise_alarm(
                session,
                device_id=device_id,
                channel="temp",
                bound=bound,  # type: ignore[arg-type]
                threshold=Decimal(10),
                value=Decimal(5),
                at=T0,
            )
    async with database.session() as session:
        assert await alarms.counts(session, actor=SHELL) == {"kiln-1": 2, "kiln-2": 1}
        await alarms.clear_alarm(
            session,
            device_id="kiln-1",
            channel="temp",
            bound="low",
            at=T0 + timedelta(minutes=1),
            reason="threshold removed",
        )
    async with database.session() as session:
        active = await alarms.active(session, actor=SHELL)
        assert sorted((a.device_id, a.bound) for a in active) == [
            ("kiln-1", "high"),
            ("kiln-2", "high"),
        ]
        entry = (await audit.recent(session, limit=1))[0]
    assert (entry.action, entry.actor) == ("alarm.clear", "server")
    assert entry.after is not None and entry.after["reason"] == "threshold removed"


async def test_reading_alarms_takes_devices_read(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(ForbiddenError):
            await alarms.active(session, actor=NOBODY)
        with pytest.raises(ForbiddenError):
            await alarms.recent(session, actor=NOBODY, device_id="kiln-1")
        with pytest.raises(ForbiddenError):
            await alarms.counts(session, actor=NOBODY)


async def test_a_bound_other_than_low_or_high_is_refused(database: Database) -> None:
    await _register(database, "kiln-1")
    async with database.session() as session:
        with pytest.raises(ValueError, match="bound"):
            await alarms.raise_alarm(
                session,
                device_id="kiln-1",
                channel="temp",
                bound="middle",  # type: ignore[arg-type]
                threshold=Decimal(1),
                value=Decimal(2),
                at=T0,
            )
