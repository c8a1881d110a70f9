"""/audit as a person reads it: changes in words, names linked, filters narrowing, paging."""

from __future__ import annotations

import re
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.rbac import PERMISSIONS
from core.services import devices, users
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_admin_screens import eventually
from tests.webui.pages.test_login import signed_in

pytestmark = pytest.mark.backends("one")
ADMIN = Actor(name="ada", permissions=frozenset(PERMISSIONS), roles=("Admin",))


async def _history(database: Database) -> None:
    """A device made and renamed; vic given a display name and disabled."""
    async with database.session() as session:
        await devices.create_device(
            session, actor=ADMIN, device_id="press-01", name="Spindle press"
        )
    async with database.session() as session:
        await devices.update_device(session, actor=ADMIN, device_id="press-01", name="Press 7")
    async with database.session() as session:
        vic = await users.find_by_username(session, "vic")
        assert vic is not None
        await users.update_user(
            session, actor=ADMIN, user_id=vic.id, display_name="Vic Viewer", is_active=False
        )


def _table(user: User) -> ui.table:
    table = user.find(marker="audit").elements.pop()
    assert isinstance(table, ui.table)
    return table


def _row(user: User, action: str) -> dict[str, Any]:
    found = [r for r in _table(user).rows if r["action"] == action]
    assert len(found) == 1, [r["action"] for r in _table(user).rows]
    [row] = found
    return row


def _choose(user: User, marker: str, value: object) -> None:
    picker = user.find(marker=marker).elements.pop()
    assert isinstance(picker, ui.select)
    picker.value = value


async def test_changes_read_in_words_with_names_linked_and_filters_narrow(
    user: User, database: Database
) -> None:
    await _history(database)
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/audit")
    await user.should_see("Hash chain intact", retries=30)
    # Read once the browser has named its zone (asked once it has connected).
    await eventually(lambda: _table(user).rows and _table(user).rows[0]["at"].endswith("JST"))

    renamed = _row(user, "device.update")
    assert renamed["change"] == ["name: Spindle press → Press 7"]
    assert renamed["target"] == {"label": "Press 7 (press-01)", "href": "/devices/press-01"}
    assert renamed["actor"] == {"label": "ada", "href": "/users"}

    disabled = _row(user, "user.update")
    assert disabled["change"] == ["display name: (empty) → Vic Viewer", "active: yes → no"]
    assert disabled["target"] == {"label": "vic", "href": "/users"}
    created = _row(user, "device.create")
    assert created["change"] == ["name: Spindle press", "description: (empty)", "enabled: yes"]
    assert _row(user, "auth.login")["change"] == ["—"]
    for row in _table(user).rows:  # never a Python repr, never a bare UUID
        text = " ".join([*row["change"], row["target"]["label"], row["actor"]["label"]])
        assert not re.search(r"None|True|False|\{'|[0-9a-f]{8}-[0-9a-f]{4}-", text), row

    _choose(user, "audit-action", "device")
    await eventually(lambda: _table(user).pagination["rowsNumber"] == 2)
    assert {r["action"] for r in _table(user).rows} == {"device.create", "device.update"}

    _choose(user, "audit-action", "")
    await eventually(lambda: _table(user).pagination["rowsNumber"] > 2)
    user.find(marker="audit-search").type("Spindle")
    await eventually(lambda: _table(user).pagination["rowsNumber"] == 2)
    assert {r["action"] for r in _table(user).rows} == {"device.create", "device.update"}


async def test_a_link_narrows_to_one_target_and_pages_in_the_database(
    user: User, database: Database
) -> None:
    await _history(database)
    async with database.session() as session:
        for n in range(30):
            await devices.update_device(session, actor=ADMIN, device_id="press-01", name=f"P{n}")
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/audit?target_type=device&target_id=press-01")
    await user.should_see("Only P29 (press-01)", retries=30)
    table = _table(user)
    await eventually(lambda: table.rows)
    assert table.pagination["rowsNumber"] == 32
    assert len(table.rows) == 25  # one page in the browser, not the log
    assert table.rows[0]["change"] == ["name: P28 → P29"]

    # What Quasar sends when "next page" is clicked with rowsNumber set: the server pages.
    user.find(marker="audit").trigger("request", {"pagination": {**table.pagination, "page": 2}})
    await eventually(lambda: table.pagination["page"] == 2)
    assert len(table.rows) == 7
    assert table.rows[-1]["action"] == "device.create"

    by_action = {**table.pagination, "page": 1, "sortBy": "action", "descending": False}
    user.find(marker="audit").trigger("request", {"pagination": by_action})
    await eventually(lambda: table.pagination["sortBy"] == "action")
    assert table.rows[0]["action"] == "device.create"  # sorted in the database, all pages


async def test_a_viewer_is_not_let_in(user: User) -> None:
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/audit")
    await user.should_see(marker="not-allowed", retries=30)
    await user.should_not_see(marker="audit")
