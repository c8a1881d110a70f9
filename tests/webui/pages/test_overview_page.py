"""The overview: its empty state, and its numbers and lists following the fleet without a reload."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from nicegui import app
from nicegui.testing.user import User

from core.protocol.messages import Heartbeat, Status
from core.protocol.telemetry import Batch, Sample
from core.services import device_configs, devices, users
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

SHELL = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))
LIVE = 30  # retries of 0.1 s: the page's tick, a glance every 0.25 s, a background read


def _services() -> Services:
    services: Services = app.state.services
    return services


async def _count(user: User, key: str, number: str, detail: str = "") -> None:
    await user.should_see(content=number, retries=LIVE, marker=f"number {key}")
    if detail:
        await user.should_see(content=detail, retries=LIVE, marker=f"detail {key}")


async def test_an_empty_fleet_reads_as_empty_with_links_to_its_lists(user: User) -> None:
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/")
    for key in ("online", "stale", "offline", "alarms", "backlog", "conflicts"):
        await _count(user, key, "0")
    await _count(user, "online", "0", "of 0 devices")
    await _count(user, "backlog", "0", "no samples queued")
    await user.should_see(marker="attention-empty")
    await user.should_see("No device has gone offline yet.", marker="offline-empty")
    await user.should_see("0 devices", marker="registered devices")
    await user.should_see("2 users", marker="registered users")
    links = {marker: user.find(marker=f"count {marker}").elements.pop() for marker in ("online",)}
    assert links["online"].props["href"] == "/fleet?status=online"
    assert user.find(marker="registered users").elements.pop().props["href"] == "/users"
    await user.should_not_see("You can open")


async def test_the_numbers_and_lists_follow_presence_alarms_and_backlog(user: User) -> None:
    async with _services().database.session() as session:
        for device_id in ("kiln-1", "kiln-2"):
            await devices.create_device(session, actor=SHELL, device_id=device_id)
    async with _services().database.session() as session:
        await device_configs.update_desired(
            session,
            actor=SHELL,
            device_id="kiln-1",
            changes={"thresholds": {"temp": {"high": "80.0"}}, "units": {"temp": "°C"}},
        )
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/")
    await _count(user, "offline", "2", "or not heard yet")  # registered, never heard
    await _count(user, "online", "0", "of 2 devices")

    presence = _services().backbone.presence
    await presence.on_status(Status("kiln-1", "online"))
    await presence.on_heartbeat(Heartbeat("kiln-1", interval_s=5, outbox=4210))
    await presence.on_heartbeat(Heartbeat("kiln-2", interval_s=5, outbox=3))  # in flight only
    await _count(user, "online", "2")
    await _count(user, "offline", "0")
    await _count(user, "backlog", "1", "4,210 samples queued")
    await user.should_see(content="4,210 samples queued", retries=LIVE, marker="attention kiln-1")
    await user.should_not_see(marker="attention kiln-2")

    batch = Batch(
        "kiln-1", "s1", "live", (Sample(1, int(time.time() * 1000), {"temp": Decimal("85.5")}),)
    )
    _services().backbone.ingest.commits.emit([batch])
    await _count(user, "alarms", "1", "on 1 device")
    await user.should_see(
        content="temp above its high of 80.0 °C: 85.5 °C",
        retries=LIVE,
        marker="attention-alarm kiln-1",
    )

    await presence.on_status(Status("kiln-1", "offline", "lost"))
    await _count(user, "online", "1")
    await _count(user, "offline", "1")
    await user.should_see(content="connection lost", retries=LIVE, marker="offline-event kiln-1")
    await user.should_see(content="still offline", retries=LIVE, marker="offline-event kiln-1")
    await user.should_see(content="UTC", marker="offline-event kiln-1")  # the zone is named


async def test_a_user_whose_roles_open_nothing_is_told_so(user: User) -> None:
    async with _services().database.session() as session:
        await users.bootstrap_user(session, username="nat", password="nat-password-1", roles=[])
    await signed_in(user, "nat", "nat-password-1")
    await user.open("/")
    await user.should_see("Your roles open no list yet", marker="overview-nothing")
    await user.should_not_see(marker="count online")
