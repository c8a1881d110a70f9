"""The fleet and device pages show an identity conflict while it lasts, and one last-seen time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nicegui import app
from nicegui.testing.user import User

from core.db.engine import Database
from core.services import devices
from core.services.actor import Actor
from tests.webui.conftest import VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from webui.backbone.identity import Sighting
from webui.backbone.server import Backbone
from webui.components.values import when
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

SHELL = Actor(name="test", permissions=frozenset({"devices:write", "devices:read"}))
A, B = "a1" * 16, "b2" * 16


async def _register(database: Database, *ids: str) -> None:
    async with database.session() as session:
        for device_id in ids:
            await devices.create_device(session, actor=SHELL, device_id=device_id, name=device_id)


def _backbone() -> Backbone:
    services: Services = app.state.services
    return services.backbone


def _fight(backbone: Backbone, device_id: str) -> datetime:
    """Two instances take turns for ``device_id`` (A, B, A); returns when the third spoke."""
    now = datetime.now(UTC)
    for n, stream in enumerate((A, B, A)):
        backbone.identity.seen(Sighting(device_id, stream, now + timedelta(milliseconds=n)))
    return now + timedelta(milliseconds=2)


def _end(backbone: Backbone) -> None:
    """A window later, with nothing heard since: the episode is over."""
    later = datetime.now(UTC) + backbone.identity.window + timedelta(seconds=1)
    backbone.identity.clock = lambda: later
    backbone.identity.sweep()


async def test_the_fleet_shows_a_conflict_until_it_stops(user: User, database: Database) -> None:
    await _register(database, "kiln-1", "kiln-2")
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see(marker="fleet kiln-1")
    await user.should_not_see(marker="conflict kiln-1")

    backbone = _backbone()
    since = _fight(backbone, "kiln-1")
    text = f"identity conflict: 2 stations use these credentials since {when(since)}"
    await user.should_see(content=text, retries=20, marker="conflict kiln-1")
    await user.should_not_see(marker="conflict kiln-2")

    _end(backbone)
    await user.should_not_see(marker="conflict kiln-1", retries=20)
    await user.should_see(marker="fleet kiln-1")


async def test_the_device_page_shows_a_conflict_until_it_stops(
    user: User, database: Database
) -> None:
    await _register(database, "kiln-1")
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="device-status", retries=20)
    await user.should_not_see(marker="device-conflict")

    backbone = _backbone()
    since = _fight(backbone, "kiln-1")
    await user.should_see(
        content=f"2 stations use these credentials since {when(since)}",
        retries=20,
        marker="device-conflict",
    )
    _end(backbone)
    await user.should_not_see(marker="device-conflict", retries=20)


async def test_fleet_and_device_pages_show_the_same_last_seen_time(
    user: User, database: Database
) -> None:
    """The backbone's memory, ahead of the stored column, is what both pages read."""
    await _register(database, "kiln-1")
    async with database.session() as session:
        stored = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
        await devices.record_last_seen(session, seen={"kiln-1": stored})
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see(content=when(stored), retries=20, marker="seen kiln-1")
    heard = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    _backbone().last_seen.heard("kiln-1", heard)
    await user.should_see(content=when(heard), retries=20, marker="seen kiln-1")

    await user.open("/devices/kiln-1")
    await user.should_see(content=f"last seen {when(heard)}", retries=20, marker="device-presence")
