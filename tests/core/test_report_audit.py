"""The audit report: the log narrowed by actor, action family, target and time, in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.db.engine import Database
from core.errors import ForbiddenError, InvalidError
from core.services import audit, devices
from core.services.actor import Actor
from core.services.audit_search import AuditQuery
from core.services.reports import audit_report as audit_report_module
from core.services.reports import csv_text
from core.services.reports.audit_report import audit_report

ADA = Actor(name="ada", permissions=frozenset({"devices:write"}))
AUDITOR = Actor(name="rita", permissions=frozenset({"reports:read", "audit:read"}))
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CY = "7d0c2a53-5a5e-4d0e-9a55-3f0c8f1b2e11"  # a user id no user has: shown as the id only


def at(minutes: int) -> datetime:
    """T0 plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


# (minute, actor, action, target type, target id, before, after): the log the tests read.
LOG: tuple[tuple[int, str, str, str, str, Any, Any], ...] = (
    (0, "ada", "device.update", "device", "press-1", {"name": "Press"}, {"name": "Press one"}),
    (5, "bob", "device.config.update", "device", "press-1", {"interval_s": 1}, {"interval_s": 2}),
    (10, "device:press-1", "device.config.applied", "device", "press-1", None, {"version": 2}),
    (15, "ada", "user.create", "user", CY, None, {"username": "cy", "roles": ["Viewer"]}),
    (20, "ada", "devices.purge", "device", "press-1", None, None),  # not the device family
)


@pytest.fixture
async def log(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The device press-1 ("Press one"), made an hour before T0, then ``LOG``: their ids."""
    clock = {"now": at(-60)}
    monkeypatch.setattr(audit, "utcnow", lambda: clock["now"])
    async with database.session() as session:
        await devices.create_device(session, actor=ADA, device_id="press-1", name="Press one")
    ids = []
    for minute, actor, action, target_type, target_id, before, after in LOG:
        clock["now"] = at(minute)
        async with database.session() as session:
            entry = await audit.record(
                session, actor=actor, action=action, target_type=target_type,
                target_id=target_id, before=before, after=after,
            )  # fmt: skip
            ids.append(entry.id)
    return ids


async def _ids(database: Database, **filters: Any) -> list[int]:
    since, until = filters.pop("since", at(0)), filters.pop("until", at(30))
    async with database.session() as session:
        table = await audit_report(
            session, actor=AUDITOR, query=AuditQuery(**filters), since=since, until=until
        )
    return [int(str(row["id"])) for row in table.rows]


async def test_the_filters_narrow_the_log_to_exactly_the_entries_asked(
    database: Database, log: list[int]
) -> None:
    update, config, applied, create, purge = log
    assert await _ids(database) == log  # oldest first; the device's creation is before T0
    assert await _ids(database, actor="ada") == [update, create, purge]
    assert await _ids(database, action="device") == [update, config, applied]  # not devices.*
    assert await _ids(database, action="device.config") == [config, applied]
    assert await _ids(database, action="device.config.applied") == [applied]
    assert await _ids(database, target_type="user") == [create]
    assert await _ids(database, target_type="device", target_id="press-1") == [
        update, config, applied, purge,
    ]  # fmt: skip
    assert await _ids(database, since=at(5), until=at(15)) == [config, applied]  # [from, to)
    assert await _ids(database, actor="ada", action="device", since=at(-61)) == [
        update - 1,
        update,
    ]  # fmt: skip  (the device's creation, by ada, an hour before)
    assert await _ids(database, actor="nobody") == []


async def test_each_row_names_who_and_what_and_says_the_change_in_words(
    database: Database, log: list[int]
) -> None:
    update, config, applied, create, _ = log
    async with database.session() as session:
        table = await audit_report(
            session, actor=AUDITOR, query=AuditQuery(), since=at(0), until=at(16)
        )
    assert [dict(r) for r in table.rows] == [
        {
            "id": update, "at": at(0), "actor": "ada", "actor_name": "", "action": "device.update",
            "target_type": "device", "target_id": "press-1", "target_name": "Press one (press-1)",
            "change": "name: Press → Press one",
        },
        {
            "id": config, "at": at(5), "actor": "bob", "actor_name": "",
            "action": "device.config.update", "target_type": "device", "target_id": "press-1",
            "target_name": "Press one (press-1)", "change": "interval (s): 1 → 2",
        },
        {
            "id": applied, "at": at(10), "actor": "device:press-1",
            "actor_name": "Press one (press-1)", "action": "device.config.applied",
            "target_type": "device", "target_id": "press-1",
            "target_name": "Press one (press-1)", "change": "version: 2",
        },
        {
            "id": create, "at": at(15), "actor": "ada", "actor_name": "", "action": "user.create",
            "target_type": "user", "target_id": CY, "target_name": "",
            "change": "username: cy; roles: Viewer",
        },
    ]  # fmt: skip
    assert table.filters == {
        "actor": "any", "action": "any", "target_type": "any", "target_id": "any",
        "from": "2026-11-02T09:00:00+00:00", "to": "2026-11-02T09:16:00+00:00",
    }  # fmt: skip
    assert csv_text(table).splitlines()[:2] == [
        "id,at,actor,actor_name,action,target_type,target_id,target_name,change",
        f"{update},2026-11-02T09:00:00+00:00,ada,,device.update,device,press-1,"
        "Press one (press-1),name: Press → Press one",
    ]


async def test_too_many_entries_is_a_request_to_narrow_not_a_cut_table(
    database: Database, log: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_report_module, "MAX_ROWS", 4)
    assert len(await _ids(database, since=at(0), until=at(16))) == 4  # at the bound: all
    with pytest.raises(InvalidError, match="5 entries match, a report holds at most 4"):
        await _ids(database)


async def test_the_report_needs_reports_and_audit_read_and_a_forward_range(
    database: Database, log: list[int]
) -> None:
    async with database.session() as session:
        week = await audit_report(
            session, actor=AUDITOR, query=AuditQuery(), until=at(7 * 24 * 60 + 5)
        )
        assert [r["id"] for r in week.rows] == log[1:]  # from: the week before, minute 5
        for actor in (
            Actor(name="r", permissions=frozenset({"reports:read"})),
            Actor(name="a", permissions=frozenset({"audit:read"})),
        ):
            with pytest.raises(ForbiddenError):
                await audit_report(session, actor=actor, query=AuditQuery())
        with pytest.raises(InvalidError, match="must be before") as backwards:
            await audit_report(session, actor=AUDITOR, query=AuditQuery(), since=at(9), until=at(1))
        assert backwards.value.field == "from"
