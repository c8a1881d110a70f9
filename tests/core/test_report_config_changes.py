"""What became of each configuration version, and the configuration-changes report of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.db.engine import Database
from core.errors import ForbiddenError, InvalidError, NotFoundError
from core.protocol.station_config import ConfigReport, Outcome
from core.services import config_history, device_configs, devices
from core.services.actor import Actor
from core.services.reports import config_changes as config_changes_module
from core.services.reports import csv_text
from core.services.reports.config_changes import config_changes

ADA = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))
BOB = Actor(name="bob", permissions=frozenset({"devices:read", "config:write"}))
REPORTER = Actor(name="rita", permissions=frozenset({"reports:read", "devices:read"}))
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
REFUSAL = "interval_s 0.5 is below this station's 1 s"


def at(minutes: int) -> datetime:
    """T0 plus ``minutes``: every time in these tests, so each figure can be exact."""
    return T0 + timedelta(minutes=minutes)


class Clock:
    """``config_history``'s ``datetime``, telling the time the test sets."""

    now_at = T0

    @classmethod
    def now(cls, tz: Any = None) -> datetime:
        return cls.now_at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[Clock]:
    monkeypatch.setattr(config_history, "datetime", Clock)
    return Clock


async def _edit(database: Database, minutes: int, who: Actor, **changes: Any) -> None:
    Clock.now_at = at(minutes)
    async with database.session() as session:
        await device_configs.update_desired(
            session, actor=who, device_id="press-1", changes=changes
        )


async def _report(
    database: Database,
    minutes: int,
    running: int,
    outcome: Outcome,
    about: int,
    detail: str = "",
    *,
    device: str = "press-1",
    news: bool = True,
) -> None:
    Clock.now_at = at(minutes)
    settings = {"interval_s": 1}  # what it runs does not matter to the outcomes
    report = ConfigReport(device, running, settings, outcome, about, detail)
    async with database.session() as session:
        assert await device_configs.record_report(session, report=report, news=news)


async def _press(database: Database) -> None:
    """v1 ada, v2 bob, v3 ada, v4 bob, v5 ada; applied v1, went to v3, refused v4."""
    async with database.session() as session:
        await devices.create_device(session, actor=ADA, device_id="press-1", name="Press one")
    await _edit(database, 0, ADA, interval_s=1)
    await _report(database, 1, 1, "applied", 1)
    await _edit(database, 10, BOB, interval_s=2, units={"rpm": "1/min"})
    await _edit(database, 11, ADA, heartbeat_s=5)
    await _report(database, 12, 3, "applied", 3)
    await _edit(database, 20, BOB, interval_s=0.5)
    await _report(database, 21, 3, "rejected", 4, REFUSAL)
    await _edit(database, 30, ADA, heartbeat_s=10)


def _outcomes(entries: list[config_history.Entry]) -> list[tuple[object, ...]]:
    return [(e.version, e.outcome, e.outcome_at, e.outcome_detail) for e in entries]


async def test_each_version_keeps_the_first_word_the_station_said_of_it(
    database: Database, clock: type[Clock]
) -> None:
    await _press(database)
    async with database.session() as session:
        entries = await config_history.entries(session, device_id="press-1")
    expected = [
        (5, None, None, None),
        (4, "rejected", at(21), REFUSAL),
        (3, "applied", at(12), None),
        (2, "superseded", at(12), "superseded by v3"),
        (1, "applied", at(1), None),
    ]
    assert _outcomes(entries) == expected
    # The broker hands the retained reports over again on each connect: nothing moves.
    await _report(database, 40, 3, "rejected", 4, REFUSAL, news=False)
    await _report(database, 41, 3, "rejected", 4, "another reason", news=False)
    async with database.session() as session:
        assert _outcomes(await config_history.entries(session, device_id="press-1")) == expected


async def test_a_report_the_server_missed_still_settles_the_version_it_runs(
    database: Database, clock: type[Clock]
) -> None:
    """Applied v2 was replaced on the retained topic by the refusal of v4 before the server
    heard it: v2 is applied (it runs it), v1 and v3 were gone past."""
    async with database.session() as session:
        await devices.create_device(session, actor=ADA, device_id="press-1")
    for minute, seconds in enumerate((1, 2, 3, 0.5)):
        await _edit(database, minute, ADA, interval_s=seconds)
    await _report(database, 9, 2, "rejected", 4, REFUSAL)
    async with database.session() as session:
        entries = await config_history.entries(session, device_id="press-1")
    assert _outcomes(entries) == [
        (4, "rejected", at(9), REFUSAL),
        (3, "superseded", at(9), "superseded by v4"),
        (2, "applied", at(9), None),
        (1, "superseded", at(9), "superseded by v4"),
    ]


async def test_an_unverifiable_refusal_settles_nothing_it_cannot_name(
    database: Database, clock: type[Clock]
) -> None:
    """A refusal whose version could not be trusted is about version 0: no version's word."""
    async with database.session() as session:
        await devices.create_device(session, actor=ADA, device_id="press-1")
    await _edit(database, 0, ADA, interval_s=1)
    await _report(database, 1, 0, "rejected", 0, "signature: bad key")
    async with database.session() as session:
        entries = await config_history.entries(session, device_id="press-1")
    assert _outcomes(entries) == [(1, None, None, None)]


ROWS_PRESS_1 = [
    {
        "device_id": "press-1", "device_name": "Press one", "version": 2,
        "changed_at": at(10), "changed_by": "bob", "source": "edit", "note": "",
        "changes": "interval_s: 1 → 2; units.rpm: added 1/min",
        "outcome": "superseded", "outcome_at": at(12), "outcome_detail": "superseded by v3",
    },
    {
        "device_id": "press-1", "device_name": "Press one", "version": 3,
        "changed_at": at(11), "changed_by": "ada", "source": "edit", "note": "",
        "changes": "heartbeat_s: added 5",
        "outcome": "applied", "outcome_at": at(12), "outcome_detail": None,
    },
    {
        "device_id": "press-1", "device_name": "Press one", "version": 4,
        "changed_at": at(20), "changed_by": "bob", "source": "edit", "note": "",
        "changes": "interval_s: 2 → 0.5",
        "outcome": "rejected", "outcome_at": at(21), "outcome_detail": REFUSAL,
    },
    {
        "device_id": "press-1", "device_name": "Press one", "version": 5,
        "changed_at": at(30), "changed_by": "ada", "source": "edit", "note": "",
        "changes": "heartbeat_s: 5 → 10",
        "outcome": "pending", "outcome_at": None, "outcome_detail": None,
    },
]  # fmt: skip


async def _seeded_press_2(database: Database) -> None:
    """A station that ran version 7, seeded before outcomes (and the history) were kept."""
    async with database.session() as session:
        await devices.create_device(session, actor=ADA, device_id="press-2", name="Press two")
    await _report(database, 14, 7, "applied", 7, device="press-2")  # before its row exists
    Clock.now_at = at(15)
    async with database.session() as session:
        await config_history.add(
            session, device_id="press-2", version=7, settings={"interval_s": 3},
            changed_by="(before history was kept)", source="edit",
        )  # fmt: skip


async def test_the_report_lists_each_version_in_the_period_with_its_diff_and_outcome(
    database: Database, clock: type[Clock]
) -> None:
    await _press(database)
    await _seeded_press_2(database)
    async with database.session() as session:
        table = await config_changes(session, actor=REPORTER, since=at(10), until=at(31))
        one = await config_changes(
            session, actor=REPORTER, device_id="press-1", since=at(11), until=at(30)
        )
    seeded = {
        "device_id": "press-2", "device_name": "Press two", "version": 7,
        "changed_at": at(15), "changed_by": "(before history was kept)", "source": "edit",
        "note": "", "changes": "—", "outcome": "unknown", "outcome_at": None,
        "outcome_detail": None,
    }  # fmt: skip
    assert [dict(r) for r in table.rows] == [*ROWS_PRESS_1[:2], seeded, *ROWS_PRESS_1[2:]]
    assert table.filters == {
        "device": "all", "from": "2026-11-02T09:10:00+00:00", "to": "2026-11-02T09:31:00+00:00",
    }  # fmt: skip
    # [from, to): v3 at minute 11 is in, v5 at minute 30 is out; one device only.
    assert [dict(r) for r in one.rows] == ROWS_PRESS_1[1:3]
    assert one.filters["device"] == "press-1 (Press one)"
    assert csv_text(one).splitlines() == [
        "device_id,device_name,version,changed_at,changed_by,source,note,changes,outcome,"
        "outcome_at,outcome_detail",
        "press-1,Press one,3,2026-11-02T09:11:00+00:00,ada,edit,,heartbeat_s: added 5,applied,"
        "2026-11-02T09:12:00+00:00,",
        "press-1,Press one,4,2026-11-02T09:20:00+00:00,bob,edit,,interval_s: 2 → 0.5,rejected,"
        f"2026-11-02T09:21:00+00:00,{REFUSAL}",
    ]


async def test_the_report_defaults_to_the_week_up_to_now_and_refuses_what_it_cannot_show(
    database: Database, clock: type[Clock]
) -> None:
    await _press(database)
    async with database.session() as session:
        recent = await config_changes(session, actor=REPORTER, until=at(7 * 24 * 60 + 21))
        assert [r["version"] for r in recent.rows] == [5]  # minute 30 is within the week
        assert recent.filters["from"] == "2026-11-02T09:21:00+00:00"
        with pytest.raises(InvalidError, match="must be before") as backwards:
            await config_changes(session, actor=REPORTER, since=at(5), until=at(5))
        assert backwards.value.field == "from"
        with pytest.raises(NotFoundError):
            await config_changes(session, actor=REPORTER, device_id="press-9")
        with pytest.raises(ForbiddenError):
            await config_changes(session, actor=ADA)  # no reports:read
        with pytest.raises(ForbiddenError):
            await config_changes(
                session, actor=Actor(name="r", permissions=frozenset({"reports:read"}))
            )


async def test_more_versions_than_a_report_holds_is_a_request_to_narrow(
    database: Database, clock: type[Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _press(database)
    monkeypatch.setattr(config_changes_module, "MAX_ROWS", 4)
    async with database.session() as session:
        table = await config_changes(session, actor=REPORTER, since=at(10), until=at(31))
        assert len(table.rows) == 4  # at the bound: all of them
        with pytest.raises(InvalidError, match="more than 4 versions match") as many:
            await config_changes(session, actor=REPORTER, since=at(0), until=at(31))
        assert many.value.field == "from"
        with pytest.raises(InvalidError, match="at most 366 days"):
            await config_changes(session, actor=REPORTER, since=at(0), until=at(367 * 24 * 60))
