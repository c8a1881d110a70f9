"""The long lists (fleet, devices, users, roles): empty and filled, searched, sorted, paged."""

from __future__ import annotations

import time

import pytest
from nicegui import app, ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.protocol.messages import Status
from core.services import devices
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD
from tests.webui.pages.test_login import signed_in
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

SHELL = Actor(name="test", permissions=frozenset({"devices:write", "devices:read"}))
EN = "\N{EN DASH}"
# A page of 1,000 devices builds its 25 rows only; building all of them took ~10 s here.
BUILDS_WITHIN_S = 3.0


async def _register(database: Database, ids: list[str]) -> None:
    async with database.session() as session:
        for device_id in ids:
            await devices.create_device(session, actor=SHELL, device_id=device_id)


def _rows(user: User, prefix: str) -> list[str]:
    """The keys of the rows on screen, in order (their markers are ``prefix key``)."""
    rows = sorted((e for e in user.find(marker=prefix).elements if e.tag == "tr"), key=id_of)
    return [next(m for m in row._markers if m != prefix) for row in rows]


def id_of(element: ui.element) -> int:
    """Rows are made in the order they show: their ids say that order."""
    return element.id


async def test_the_fleet_says_when_no_device_is_registered(user: User) -> None:
    """An empty fleet says so, under its headings, and counts nothing."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/fleet")
    await user.should_see("No devices registered yet.", marker="fleet-table-empty")
    await user.should_see("0 of 0 devices", marker="fleet-table-count")
    for heading in ("Device", "Status", "Last seen", "Backlog", "Latest values", "Trend"):
        await user.should_see(heading)


async def test_the_fleet_is_searched_filtered_sorted_and_paged(
    user: User, database: Database
) -> None:
    """60 devices: 25 on a page; search, status, sort and the pager each change the rows."""
    presses = [f"press-{n:02d}" for n in range(1, 56)]
    kilns = [f"kiln-{n}" for n in range(1, 6)]
    await _register(database, presses + kilns)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/fleet")
    await user.should_see(f"1{EN}25 of 60 devices", marker="fleet-table-count")
    assert _rows(user, "fleet")[:6] == [*kilns, "press-01"]

    user.find(marker="fleet-table-search").type("kiln")
    await user.should_see(f"1{EN}5 of 5 devices", marker="fleet-table-count")
    assert _rows(user, "fleet") == kilns
    user.find(marker="fleet-table-search").clear()
    await user.should_see(f"1{EN}25 of 60 devices", marker="fleet-table-count")

    user.find(marker="fleet-table-sort device").click()  # opened sorted by id: now the other way
    await user.should_see(f"1{EN}25 of 60 devices", marker="fleet-table-count")
    assert _rows(user, "fleet")[:2] == ["press-55", "press-54"]
    pager = user.find(marker="fleet-table-pages").elements.pop()
    assert isinstance(pager, ui.pagination)
    pager.value = 3
    await user.should_see(f"51{EN}60 of 60 devices", marker="fleet-table-count")
    assert _rows(user, "fleet")[-1] == "kiln-1"

    services: Services = app.state.services
    await services.backbone.presence.on_status(Status("kiln-3", "online"))
    toggle = user.find(marker="fleet-status").elements.pop()
    assert isinstance(toggle, ui.toggle)
    toggle.value = "online"
    await user.should_see(f"1{EN}1 of 1 device", marker="fleet-table-count")
    assert _rows(user, "fleet") == ["kiln-3"]
    await services.backbone.presence.on_status(Status("kiln-4", "online"))
    await user.should_see(f"1{EN}2 of 2 devices", marker="fleet-table-count", retries=30)


async def test_the_fleet_opens_filtered_from_a_link(user: User, database: Database) -> None:
    """``/fleet?status=offline&q=kiln`` (the overview's links) opens narrowed."""
    await _register(database, ["kiln-1", "kiln-2", "press-1"])
    services: Services = app.state.services
    await services.backbone.presence.on_status(Status("kiln-1", "online"))
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/fleet?status=offline&q=kiln")
    await user.should_see(f"1{EN}1 of 1 device", marker="fleet-table-count")
    assert _rows(user, "fleet") == ["kiln-2"]


async def test_a_thousand_devices_build_one_page(user: User, database: Database) -> None:
    """The fleet and device pages of 1,000 devices build 25 rows, quickly."""
    await _register(database, [f"d-{n:04d}" for n in range(1000)])
    await signed_in(user, "ada", ADMIN_PASSWORD)
    for route, table, prefix in (
        ("/fleet", "fleet-table", "fleet"),
        ("/devices", "devices-table", "device"),
    ):
        started = time.perf_counter()
        await user.open(route)
        await user.should_see(f"1{EN}25 of 1,000 devices", marker=f"{table}-count")
        took = time.perf_counter() - started
        assert took < BUILDS_WITHIN_S, f"{route} took {took:.2f} s"
        assert len(_rows(user, prefix)) == 25


async def test_devices_empty_then_registered_with_a_copyable_password(user: User) -> None:
    """No devices says so; a registered one is listed, linked, and its password copyable."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices")
    await user.should_see("No devices registered yet.", marker="devices-table-empty")
    user.find(marker="new-device-id").type("press-07")
    user.find(marker="register-device").click()
    await user.should_see(marker="device-password", retries=30)
    user.find(marker="device-password-copy").click()
    await user.should_see("Password copied")
    user.find(marker="credentials-done").click()
    await user.should_see(marker="device press-07", retries=30)
    row = user.find(marker="device press-07").elements.pop()
    (link,) = [e for e in row.descendants() if isinstance(e, ui.link)]
    assert link.props["href"] == "/devices/press-07"
    await user.should_see(f"1{EN}1 of 1 device", marker="devices-table-count")


async def test_users_and_roles_are_tables_that_search(user: User) -> None:
    """Users and roles list under headings; a search narrows each to what it names."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    for heading in ("Username", "Display name", "Roles", "State"):
        await user.should_see(heading)
    assert _rows(user, "user") == ["ada", "vic"]
    user.find(marker="users-table-search").type("viewer")  # found by role too
    await user.should_see(f"1{EN}1 of 1 user", marker="users-table-count")
    assert _rows(user, "user") == ["vic"]

    await user.open("/roles")
    for heading in ("Role", "Kind", "Description", "Permissions"):
        await user.should_see(heading)
    assert "Admin" in _rows(user, "role")
    user.find(marker="roles-table-search").type("no such role")
    await user.should_see("No roles match.", marker="roles-table-empty")
