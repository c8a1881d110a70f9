"""The device page's configuration: drift in the browser's zone, history, stale edits, rollback."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.protocol.commands import Result
from core.protocol.station_config import ConfigReport
from core.services import commands, config_history, device_configs, devices
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from tests.webui.pages.test_open_pages import bea, change_ada, no_watch, refused

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")
__all__ = ["bea", "no_watch"]  # fixtures used by name

SHELL = Actor(name="test", permissions=frozenset({"devices:write", "devices:read"}))
BOB = Actor(name="bob", permissions=frozenset({"devices:read", "config:write"}))


async def _device(database: Database, *edits: dict[str, object]) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=SHELL, device_id="kiln-1", name="Kiln")
    for changes in edits:
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=BOB, device_id="kiln-1", changes=changes
            )


async def test_a_stale_edit_is_refused_and_shows_the_newer_version(
    user: User, database: Database
) -> None:
    await _device(database, {"interval_s": 1})
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="version 1: a sample every 1 s", retries=30)
    await _device_edit(database, heartbeat_s=30)  # another editor, meanwhile

    user.find(marker="config-interval").clear().type("2")
    user.find(marker="config-save").click()
    await user.should_see(
        content="you edited version 1, but version 2 by bob was made meanwhile",
        retries=30,
        marker="config-error",
    )
    await user.should_see(content="version 2: a sample every 1 s; a heartbeat every 30 s")
    await user.should_see(marker="config-change 2")
    assert await _asked(database) == 2

    user.find(marker="config-save").click()  # deliberately, having seen version 2
    await user.should_see(content="version 3: a sample every 2 s", retries=30)
    await user.should_see(content="interval_s: 1 → 2", marker="config-change 3")


async def _asked(database: Database) -> int:
    async with database.session() as session:
        config = await device_configs.get(session, actor=SHELL, device_id="kiln-1")
    return config.desired_version


async def _device_edit(database: Database, **changes: object) -> None:
    async with database.session() as session:
        await device_configs.update_desired(session, actor=BOB, device_id="kiln-1", changes=changes)


async def test_history_and_drift_read_in_the_browsers_zone(user: User, database: Database) -> None:
    await _device(database, {"interval_s": 1}, {"interval_s": 2, "units": {"rpm": "1/min"}})
    report = ConfigReport("kiln-1", 1, {"interval_s": 1}, "applied", 1)
    async with database.session() as session:
        await device_configs.record_report(session, report=report, news=True)
        second = await config_history.get(session, device_id="kiln-1", version=2)
    assert second is not None
    berlin = second.changed_at.astimezone(ZoneInfo("Europe/Berlin"))
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: (
        "Europe/Berlin"
    )
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    name = berlin.tzname()
    clock = f"{berlin:%H:%M:%S}" if berlin.date() == datetime.now(berlin.tzinfo).date() else ""
    await user.should_see(
        content=f"the station runs v1, v2 asked since {clock}", retries=30, marker="config-drift"
    )
    await user.should_see(content=f" {name}", marker="config-drift")
    await user.should_see(content=f"{name} · bob · edited", marker="config-version-by 2")
    await user.should_see(content="units.rpm: added 1/min", marker="config-change 2")
    await user.should_see(content="interval_s: added 1", marker="config-change 1")
    await user.should_not_see(marker="config-rollback")  # a Viewer rolls nothing back
    await user.should_not_see(marker="config-save")


async def test_an_admin_rolls_back_to_an_older_version(user: User, database: Database) -> None:
    await _device(database, {"interval_s": 1}, {"interval_s": 2}, {"heartbeat_s": 5})
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="config-rollback 1", retries=30)
    await user.should_not_see(marker="config-rollback 3")  # the version asked now

    user.find(marker="config-rollback 1").click()
    await user.should_see(content="This makes version 4", retries=30)
    await user.should_see(content="heartbeat_s: removed (was 5)")
    user.find(marker="config-rollback-confirm").click()
    await user.should_see(content="version 4: a sample every 1 s.", retries=30)
    await user.should_see(content="ada · rollback to v1", marker="config-version-by 4")
    interval, heartbeat = (
        user.find(marker=f"config-{name}").elements.pop() for name in ("interval", "heartbeat")
    )
    assert isinstance(interval, ui.number) and isinstance(heartbeat, ui.number)
    assert (interval.value, heartbeat.value) == (1, None)  # the form follows: it edits v4 now
    async with database.session() as session:
        published = await device_configs.desired(session, device_id="kiln-1")
    assert published is not None and (published.version, published.settings) == (
        4,
        {"interval_s": 1},
    )


@pytest.mark.usefixtures("bea", "no_watch")
async def test_a_rollback_on_a_page_whose_rights_were_lost_is_refused(
    user: User, database: Database
) -> None:
    await _device(database, {"interval_s": 1}, {"interval_s": 2})
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="config-rollback 1", retries=30)
    await change_ada(database, "demoted")
    user.find(marker="config-rollback 1").click()
    await refused(user)
    assert await _asked(database) == 2


async def test_one_change_for_many_devices_is_previewed_sent_and_followed(
    user: User, database: Database
) -> None:
    async with database.session() as session:
        for device_id in ("press-1", "press-2", "press-3", "kiln-1"):
            await devices.create_device(session, actor=SHELL, device_id=device_id)
        await devices.update_device(session, actor=SHELL, device_id="press-3", enabled=False)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/configs/bulk")
    await user.should_see(marker="bulk-how", retries=30)
    how = user.find(marker="bulk-how").elements.pop()
    assert isinstance(how, ui.radio)
    how.value = "pattern"
    user.find(marker="bulk-interval").type("2")
    user.find(marker="bulk-send").click()
    await user.should_see(content="type a pattern", retries=30)
    user.find(marker="bulk-pattern").type("lathe-*")
    user.find(marker="bulk-preview").click()
    await user.should_see(content="nothing matched", retries=30)
    user.find(marker="bulk-pattern").clear().type("press-*")
    user.find(marker="bulk-preview").click()
    await user.should_see(
        content="2 device(s): press-1, press-2", retries=30, marker="bulk-matched"
    )

    user.find(marker="bulk-send").click()
    await user.should_see(
        content="Of 2 devices: 0 applied · 0 refused · 2 on their way", retries=30
    )
    async with database.session() as session:
        made = await commands.search(session, actor=SHELL, kind="UpdateConfig")
        assert sorted(c.device_id for c in made) == ["press-1", "press-2"]
        assert len({c.batch_id for c in made}) == 1
        for command in made:
            await commands.mark_sent(session, command_id=command.id)
            ok = command.device_id == "press-1"
            state, detail = ("succeeded", "") if ok else ("failed", "disk full")
            result = Result(command.device_id, str(command.id), state, detail)  # type: ignore[arg-type]
            await commands.record_result(session, result=result, device_id=command.device_id)
    await user.should_see(content="Of 2 devices: 1 applied · 1 refused", retries=50)
    table = user.find(marker="bulk-table").elements.pop()
    assert isinstance(table, ui.table)
    assert [(r["device_id"], r["version"], r["outcome"]) for r in table.rows] == [
        ("press-1", "v1", "applied"),
        ("press-2", "v1", "refused: disk full"),
    ]


async def test_a_viewer_cannot_open_the_change_for_many_devices(user: User) -> None:
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.should_not_see(marker="nav Bulk config", retries=30)
    await user.open("/configs/bulk")
    await user.should_see(marker="not-allowed", retries=30)
    await user.should_not_see(marker="bulk-send")
