"""Commands on the web: sent from the device page, followed live, canceled, found by filter.

No broker runs here, so the dispatcher sends nothing: a command stays queued until a test
moves it with the service's own transitions, as the dispatcher would.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing.user import User
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import Command
from core.protocol import commands as protocol
from core.rbac import PERMISSIONS
from core.services import commands, devices
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from tests.webui.pages.test_open_pages import bea, change_ada, no_watch, refused
from webui.components import command_list, command_words
from webui.components.browser_time import named

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")
__all__ = ["bea", "no_watch"]  # fixtures used by name

BOB = Actor(name="bob", permissions=frozenset(PERMISSIONS))
TOKYO = ZoneInfo("Asia/Tokyo")  # never the test machine's zone: UTC+9, no summer time


async def _device(database: Database, device_id: str = "kiln-1") -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=BOB, device_id=device_id, name="Kiln")


async def _command(
    database: Database, kind: str = protocol.PING, device_id: str = "kiln-1", **args: object
) -> uuid.UUID:
    async with database.session() as session:
        command = await commands.create(
            session, actor=BOB, device_id=device_id, kind=kind, args=args
        )
        return command.id


async def _stored(database: Database) -> list[Command]:
    async with database.session() as session:
        return list(await session.scalars(select(Command).order_by(Command.created_at)))


def _choose(user: User, marker: str, value: object) -> None:
    """Pick ``value`` in a select, as a click on its option does."""
    picker = user.find(marker=marker).elements.pop()
    assert isinstance(picker, ui.select)
    picker.value = value


async def test_an_admin_sends_a_ping_and_the_list_shows_it_queued(
    user: User, database: Database
) -> None:
    await _device(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="No commands yet.", marker="no-commands", retries=30)
    await user.should_see(content="round trip", marker="command-explanation")

    user.find(marker="command-send").click()
    await user.should_see(content="Queued", marker="command-state", retries=30)
    [sent] = await _stored(database)
    assert (sent.kind, sent.state, sent.created_by_name) == ("Ping", "queued", "ada")
    await user.should_see(content="Ping", marker=f"kind-{sent.id}")
    await user.should_see(content="no arguments", marker=f"args-{sent.id}")
    await user.should_see(content="ada", marker="command-by")
    assert any("Ping queued for kiln-1" in m for m in user.notify.messages)


async def test_a_bad_interval_is_named_under_its_field_and_nothing_is_sent(
    user: User, database: Database
) -> None:
    await _device(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="command-send", retries=30)
    _choose(user, "command-kind-select", protocol.UPDATE_CONFIG)
    await user.should_see(content="next configuration version", marker="command-explanation")

    user.find(marker="command-interval_s").type("0")
    await user.should_see(
        content="Seconds between samples must be between 0.05 and 3600; 0 is too short.",
        marker="command-interval_s",
    )
    await user.should_not_see(content="interval_s", marker="command-interval_s")
    user.find(marker="command-heartbeat_s").type("2.5")
    await user.should_see(
        content="Seconds between heartbeats must be a whole number; 2.5 is not.",
        marker="command-heartbeat_s",
    )
    user.find(marker="command-send").click()
    await user.should_see(content="Nothing was sent", marker="command-error", retries=30)
    assert await _stored(database) == []

    user.find(marker="command-interval_s").clear().type("2.5")
    user.find(marker="command-heartbeat_s").clear().type("30")
    user.find(marker="command-send").click()
    await user.should_see(
        content="a sample every 2.5 s; a heartbeat every 30 s (configuration version 1)",
        marker="command-args",
        retries=30,
    )
    [sent] = await _stored(database)
    assert sent.args == {"interval_s": 2.5, "heartbeat_s": 30}


async def test_a_disabled_device_refuses_in_words(user: User, database: Database) -> None:
    await _device(database)
    async with database.session() as session:
        await devices.update_device(session, actor=BOB, device_id="kiln-1", enabled=False)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="command-send", retries=30)
    user.find(marker="command-send").click()
    await user.should_see(content="is disabled", marker="command-error", retries=30)
    assert await _stored(database) == []


async def test_a_viewer_sees_the_commands_but_cannot_send_or_cancel(
    user: User, database: Database
) -> None:
    await _device(database)
    queued = await _command(database)
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="Queued", marker=f"state-{queued}", retries=30)
    await user.should_see(content="bob", marker="command-by")
    await user.should_not_see(marker="command-send")
    await user.should_not_see(marker="command-kind-select")
    await user.should_not_see(marker="command-cancel")


async def test_states_change_live_and_read_in_the_browsers_zone(
    user: User, database: Database
) -> None:
    await _device(database)
    ping = await _command(database)
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="Queued", marker=f"state-{ping}", retries=30)

    async with database.session() as session:
        assert await commands.mark_sent(session, command_id=ping)
    await user.should_see(content="Sent", marker=f"state-{ping}", retries=30)
    station_ms = int(datetime.now(UTC).timestamp() * 1000)
    answer = protocol.Result(
        "kiln-1",
        str(ping),
        "succeeded",
        "answered",
        {"station_time_ms": station_ms, "uptime_s": 7260},
    )
    async with database.session() as session:
        assert await commands.record_result(session, result=answer, device_id="kiln-1") == "moved"
    await user.should_see(content="Succeeded", marker=f"state-{ping}", retries=30)
    [done] = await _stored(database)
    assert done.finished_at is not None
    clock = named(datetime.fromtimestamp(station_ms / 1000, UTC), TOKYO)
    assert "JST" in clock
    await user.should_see(
        content=f"station clock {clock}, in step with the server · up 2 h 1 min",
        marker=f"outcome-{ping}",
        retries=30,
    )
    await user.should_see(content="round trip", marker=f"outcome-{ping}")
    await user.should_see(content=f"ended {named(done.finished_at, TOKYO)}")


async def test_cancel_of_a_queued_command_changes_its_state_in_the_list(
    user: User, database: Database
) -> None:
    await _device(database)
    queued = await _command(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker=f"cancel-{queued}", retries=30)

    user.find(marker=f"cancel-{queued}").click()
    await user.should_see(content="Canceled", marker=f"state-{queued}", retries=30)
    await user.should_see(content="canceled by ada", marker=f"outcome-{queued}")
    await user.should_not_see(marker=f"cancel-{queued}")
    [canceled] = await _stored(database)
    assert canceled.state == "canceled"


async def test_a_cancel_too_late_says_why(user: User, database: Database) -> None:
    """The button was there while it was queued; the broker took it before the click."""
    await _device(database)
    queued = await _command(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker=f"cancel-{queued}", retries=30)
    async with database.session() as session:
        await commands.attempt(session, command_id=queued)  # a publish has begun
    user.find(marker=f"cancel-{queued}").click()
    await user.should_see("once sent it cannot be withdrawn", retries=30)
    [still] = await _stored(database)
    assert still.state == "queued"


async def test_the_list_pages_through_older_commands(user: User, database: Database) -> None:
    await _device(database)
    ids = [await _command(database) for _ in range(command_list.PAGE + 3)]
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker=f"state-{ids[-1]}", retries=30)
    await user.should_not_see(marker=f"state-{ids[0]}")
    await user.should_see(content="1 to 20", marker="commands-span")

    user.find(marker="commands-older").click()
    await user.should_see(marker=f"state-{ids[0]}", retries=30)
    await user.should_see(content="21 to 23", marker="commands-span")
    await user.should_not_see(marker=f"state-{ids[-1]}")


async def test_the_commands_page_filters_by_state_kind_and_time(
    user: User, database: Database
) -> None:
    await _device(database, "kiln-1")
    await _device(database, "kiln-2")
    ping = await _command(database, device_id="kiln-1")
    flush = await _command(database, protocol.FLUSH_OUTBOX, device_id="kiln-2")
    other = await _command(database, device_id="kiln-2")
    async with database.session() as session:
        for command_id in (flush, other):
            await commands.cancel(session, actor=BOB, command_id=command_id)
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/commands")
    for command_id in (ping, flush, other):
        await user.should_see(marker=f"state-{command_id}", retries=30)
    await user.should_see(content="kiln-2", marker=f"device-{flush}")

    _choose(user, "filter-state", "canceled")
    await user.should_not_see(marker=f"state-{ping}", retries=30)
    await user.should_see(marker=f"state-{other}")
    _choose(user, "filter-kind", protocol.FLUSH_OUTBOX)
    await user.should_not_see(marker=f"state-{other}", retries=30)
    await user.should_see(content="Flush outbox", marker=f"kind-{flush}")

    _choose(user, "filter-state", "")
    _choose(user, "filter-kind", "")
    _choose(user, "filter-device", "kiln-1")
    await user.should_not_see(marker=f"state-{flush}", retries=30)
    await user.should_see(marker=f"state-{ping}")

    _choose(user, "filter-range", "custom")
    user.find(marker="filter-until").type("yesterday").trigger("keydown.enter")
    await user.should_see(content="write the time as", marker="filter-until", retries=30)
    user.find(marker="filter-until").clear()
    earlier = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    user.find(marker="filter-until").type(earlier).trigger("keydown.enter")
    await user.should_see(content="No commands match these filters.", retries=30)


@pytest.mark.usefixtures("bea", "no_watch")
async def test_a_demoted_admins_open_page_sends_nothing(user: User, database: Database) -> None:
    await _device(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="command-send", retries=30)
    await change_ada(database, "demoted")
    user.find(marker="command-send").click()
    await refused(user)
    assert await _stored(database) == []
    assert any("'commands:send' is required" in m for m in user.notify.messages)


def test_every_kind_and_state_has_words() -> None:
    assert set(command_words.KINDS) == set(protocol.KINDS)
    assert set(command_words.STATES) == set(protocol.STATES)
    assert all(kind.explanation for kind in command_words.KINDS.values())
    assert all(state.meaning for state in command_words.STATES.values())


def test_a_flush_result_reads_as_figures_and_ignores_anything_else() -> None:
    command = Command(
        id=uuid.uuid4(),
        kind=protocol.FLUSH_OUTBOX,
        state="failed",
        detail="the link is down",
        result={"sent": 1, "acked_seq": 1200, "pending": 3, "evil": "<script>", "sent_x": 1.5},
    )
    assert command_words.outcome(command, UTC) == (
        "the link is down · 1 sample sent · acknowledged up to seq 1200 · 3 still waiting"
    )
    command.result = {"sent": "lots", "acked_seq": -1}
    assert command_words.outcome(command, UTC) == "the link is down"
