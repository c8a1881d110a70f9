"""Configuration as a history: versions, readable diffs, drift, rollback, concurrent editors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from core.db.engine import Database
from core.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
)
from core.protocol.station_config import ConfigReport
from core.services import config_history, device_configs, devices
from core.services.actor import Actor
from core.services.config_history import Change, diff

ADMIN = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))
OTHER = Actor(name="bob", permissions=frozenset({"devices:read", "config:write"}))
READER = Actor(name="vic", permissions=frozenset({"devices:read"}))
LOCK_WAIT_S = 10.0  # the second editor is seen waiting for the first's lock well within this


def test_diff_names_each_setting_and_channel_that_changed() -> None:
    before = {
        "interval_s": 1.0,
        "heartbeat_s": 10,
        "units": {"temp": "°C", "rpm": "1/min"},
        "thresholds": {"temp": {"high": 80}, "rpm": {"low": 5, "high": 900}},
    }
    after = {
        "interval_s": 2.0,
        "units": {"temp": "°C", "flow": "l/min"},
        "thresholds": {"temp": {"low": "-5.5", "high": 90}, "rpm": {"low": 5, "high": 900}},
    }
    assert [c.text for c in diff(before, after)] == [
        "heartbeat_s: removed (was 10)",
        "interval_s: 1 → 2",
        "thresholds.temp.high: 80 → 90",
        "thresholds.temp.low: added -5.5",
        "units.flow: added l/min",
        "units.rpm: removed (was 1/min)",
    ]
    assert diff(before, before) == []
    assert diff({"interval_s": 1}, {"interval_s": 1.0}) == []  # the same number of seconds
    assert diff({}, {"units": {"rpm": "rpm/min"}}) == [Change("units.rpm", "added", new="rpm/min")]


async def _device(database: Database, *edits: dict[str, Any]) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="press-1")
    for changes in edits:
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="press-1", changes=changes
            )


async def _report(database: Database, version: int, settings: dict[str, Any]) -> None:
    report = ConfigReport("press-1", version, settings, "applied", version)
    async with database.session() as session:
        assert await device_configs.record_report(session, report=report, news=True)


EDITS = ({"interval_s": 1}, {"interval_s": 2, "units": {"rpm": "1/min"}}, {"heartbeat_s": 5})


async def test_each_change_is_a_version_with_its_author_and_what_it_changed(
    database: Database,
) -> None:
    await _device(database, *EDITS)
    async with database.session() as session:
        entries = await device_configs.history(session, actor=READER, device_id="press-1")
        assert [e.version for e in entries] == [3, 2, 1]
        assert {(e.changed_by, e.source) for e in entries} == {("ada", "edit")}
        assert entries[0].settings == {"interval_s": 2, "units": {"rpm": "1/min"}, "heartbeat_s": 5}
        texts = [[c.text for c in e.changes or ()] for e in entries]
        assert texts == [
            ["heartbeat_s: added 5"],
            ["interval_s: 1 → 2", "units.rpm: added 1/min"],
            ["interval_s: added 1"],
        ]
        page = await device_configs.history(
            session, actor=READER, device_id="press-1", limit=1, before=3
        )
        assert [(e.version, len(e.changes or ())) for e in page] == [(2, 2)]  # diffed all the same
        one = await device_configs.version(session, actor=READER, device_id="press-1", version=2)
        assert one == entries[1]
        with pytest.raises(NotFoundError):
            await device_configs.version(session, actor=READER, device_id="press-1", version=9)
        with pytest.raises(NotFoundError):
            await device_configs.history(session, actor=READER, device_id="nope")


async def test_a_version_older_than_the_history_has_no_diff(database: Database) -> None:
    """Migration 0005 seeds the then current version only: its predecessor is unknown."""
    await _device(database)
    async with database.session() as session:
        await config_history.add(
            session, device_id="press-1", version=5, settings={"interval_s": 3},
            changed_by="(before history was kept)", source="edit",
        )  # fmt: skip
        [seeded] = await config_history.entries(session, device_id="press-1")
    assert seeded.changes is None


async def test_drift_is_the_version_asked_but_not_run_and_since_when(database: Database) -> None:
    await _device(database, *EDITS[:1])
    async with database.session() as session:
        config = await device_configs.get(session, actor=READER, device_id="press-1")
        assert await device_configs.drift(session, actor=READER, config=config) is not None
    await _report(database, 1, {"interval_s": 1})
    async with database.session() as session:
        config = await device_configs.get(session, actor=READER, device_id="press-1")
        assert await device_configs.drift(session, actor=READER, config=config) is None
    for changes in EDITS[1:]:
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="press-1", changes=changes
            )
    async with database.session() as session:
        config = await device_configs.get(session, actor=READER, device_id="press-1")
        drift = await device_configs.drift(session, actor=READER, config=config)
        second = await config_history.get(session, device_id="press-1", version=2)
    assert drift is not None and second is not None
    # Lagging since version 2 was asked, not since the newest (3).
    assert (drift.desired_version, drift.reported_version, drift.since) == (3, 1, second.changed_at)


async def test_rollback_makes_a_new_version_equal_to_the_old_one(database: Database) -> None:
    await _device(database, *EDITS)
    async with database.session() as session:
        config = await device_configs.rollback(
            session, actor=OTHER, device_id="press-1", to_version=1, expected_version=3
        )
        assert (config.desired_version, config.desired) == (4, {"interval_s": 1})
    async with database.session() as session:
        [newest, *_] = await device_configs.history(session, actor=READER, device_id="press-1")
        published = await device_configs.desired(session, device_id="press-1")
    assert (newest.version, newest.source, newest.note, newest.changed_by) == (
        4, "rollback", "rollback to v1", "bob",
    )  # fmt: skip
    assert [c.text for c in newest.changes or ()] == [
        "heartbeat_s: removed (was 5)",
        "interval_s: 2 → 1",
        "units.rpm: removed (was 1/min)",
    ]
    assert published is not None and published.settings == {"interval_s": 1}


@pytest.mark.parametrize(
    ("actor", "to_version", "expected", "error"),
    [
        (READER, 1, None, ForbiddenError),
        (ADMIN, 9, None, NotFoundError),  # no such version
        (ADMIN, 1, 2, ConflictError),  # someone made version 3 meanwhile
        (ADMIN, 3, 3, InvalidError),  # already asked: nothing to roll back
    ],
)
async def test_a_refused_rollback_changes_nothing(
    database: Database,
    actor: Actor,
    to_version: int,
    expected: int | None,
    error: type[DomainError],
) -> None:
    await _device(database, *EDITS)
    with pytest.raises(error) as raised:
        async with database.session() as session:
            await device_configs.rollback(
                session,
                actor=actor,
                device_id="press-1",
                to_version=to_version,
                expected_version=expected,
            )
    if error is not ForbiddenError:
        assert raised.value.field == "version"
    async with database.session() as session:
        config = await device_configs.get(session, actor=READER, device_id="press-1")
        entries = await device_configs.history(session, actor=READER, device_id="press-1")
    assert config.desired_version == 3 and [e.version for e in entries] == [3, 2, 1]


async def test_a_stale_edit_is_refused_and_changes_nothing(database: Database) -> None:
    await _device(database, *EDITS)
    with pytest.raises(ConflictError, match="version 3 is current, you edited version 2"):
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="press-1", changes={"interval_s": 7},
                expected_version=2,
            )  # fmt: skip
    async with database.session() as session:
        config = await device_configs.get(session, actor=READER, device_id="press-1")
    assert (config.desired_version, config.desired["interval_s"]) == (3, 2)


async def _waiting_for_a_lock(database: Database) -> int:
    async with database.session() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
    return int(found or 0)


async def test_two_editors_of_version_3_one_wins_one_is_told(database: Database) -> None:
    """The second editor waits for the first's lock, then reads version 4 and gets a 409."""
    if database.dialect != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite serialises whole transactions)")
    await _device(database, *EDITS)
    first_holds, first_may_commit = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="press-1", changes={"interval_s": 4},
                expected_version=3,
            )  # fmt: skip
            first_holds.set()
            await first_may_commit.wait()

    async def second() -> None:
        await first_holds.wait()
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=OTHER, device_id="press-1", changes={"interval_s": 5},
                expected_version=3,
            )  # fmt: skip

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    async with asyncio.timeout(LOCK_WAIT_S):
        while await _waiting_for_a_lock(database) == 0:  # noqa: ASYNC110 (no event: a query)
            await asyncio.sleep(0.02)
    first_may_commit.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert outcomes[0] is None
    assert isinstance(outcomes[1], ConflictError), outcomes[1]
    assert "version 4 is current" in outcomes[1].message
    async with database.session() as session:
        entries = await device_configs.history(session, actor=READER, device_id="press-1")
    assert [(e.version, e.changed_by, e.settings["interval_s"]) for e in entries[:2]] == [
        (4, "ada", 4),
        (3, "ada", 2),
    ]
