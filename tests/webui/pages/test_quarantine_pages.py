"""Quarantined samples on the web: in words, in the browser's zone, raw shown as text and whole
on request, filtered and paged as whoever acts; Viewers see neither the page nor the link."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.db.models import QuarantinedSample
from core.rbac import PERMISSIONS
from core.services import devices
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_admin_screens import eventually
from tests.webui.pages.test_login import signed_in
from tests.webui.pages.test_open_pages import bea, change_ada, no_watch, refused
from webui.components import quarantine_list
from webui.components.browser_time import named

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")
__all__ = ["bea", "no_watch"]  # fixtures used by name

BOB = Actor(name="bob", permissions=frozenset(PERMISSIONS))
TOKYO = ZoneInfo("Asia/Tokyo")  # never the test machine's zone: UTC+9, no summer time
NOW = datetime.now(UTC).replace(microsecond=0)
HOSTILE = json.dumps({"x": "<b>bold</b><script>alert(1)</script>"})
LONG = json.dumps({f"channel_{n}": n for n in range(300)})


def _held(device: str, seq: int, reason: str, raw: str, age: timedelta) -> QuarantinedSample:
    received = NOW - age
    return QuarantinedSample(
        device_id=device,
        stream="s1",
        seq=seq,
        ts=received - timedelta(seconds=2),
        reason=reason,
        detail=f"detail of {device} {seq}",
        raw=raw,
        received_at=received,
    )


async def _hold(database: Database, *rows: QuarantinedSample) -> None:
    async with database.session() as session:
        session.add_all(rows)


def _key(device: str, seq: int) -> str:
    return f"held-{device}-s1-{seq}"


def _choose(user: User, marker: str, value: object) -> None:
    """Pick ``value`` in a select, as a click on its option does."""
    picker = user.find(marker=marker).elements.pop()
    assert isinstance(picker, ui.select)
    picker.value = value


async def test_an_admin_reads_each_sample_in_words_and_a_raw_payload_whole(
    user: User, database: Database
) -> None:
    hostile = _held("press-07", 1, "bad_value", HOSTILE, timedelta(days=2))
    await _hold(database, hostile, _held("press-07", 2, "too_many_channels", LONG, timedelta(0)))
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.should_see(marker="nav Quarantine", retries=30)
    await user.open("/telemetry/quarantine")
    await user.should_see(content="times in Asia/Tokyo", marker="quarantine-count", retries=30)
    await user.should_see(content="2 quarantined samples", marker="quarantine-count")
    key = _key("press-07", 1)
    await user.should_see(content="Bad value", marker=f"held-reason {key}")
    await user.should_see(content="detail of press-07 1", marker=f"held-detail {key}")
    await user.should_see(content=HOSTILE, marker=f"held-raw {key}")  # as text, whole: short
    await user.should_see(content=named(hostile.received_at, TOKYO))  # JST, with the date
    await user.should_see(content=named(hostile.ts, TOKYO))
    await user.should_not_see(marker=f"held-show {key}")

    clipped = _key("press-07", 2)
    start = LONG[: quarantine_list.PREVIEW]
    await user.should_see(content=f"{start}…", marker=f"held-raw {clipped}")
    await user.should_see(content=f"Show all {len(LONG):,} characters", marker="held-show")
    user.find(marker=f"held-show {clipped}").click()
    await user.should_see(marker="raw-dialog", retries=30)
    [whole] = user.find(marker="raw-whole").elements
    assert isinstance(whole, ui.label) and whole.text == LONG


async def test_filters_and_paging_choose_what_is_shown(user: User, database: Database) -> None:
    many = quarantine_list.PAGE + 3
    rows = [_held("press-07", n, "bad_value", "{}", timedelta(minutes=n)) for n in range(many)]
    await _hold(database, *rows, _held("lathe-1", 1, "bad_channel", "{}", timedelta(days=3)))
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/telemetry/quarantine")
    await user.should_see(content=f"1 to 25 of {many + 1}", marker="quarantine-span", retries=30)
    await user.should_see(marker=f"held-seq {_key('press-07', 0)}")  # the newest first
    await user.should_not_see(marker=f"held-seq {_key('lathe-1', 1)}")

    user.find(marker="quarantine-older").click()
    await user.should_see(content=f"26 to {many + 1}", marker="quarantine-span", retries=30)
    await user.should_see(marker=f"held-seq {_key('lathe-1', 1)}")

    _choose(user, "filter-reason", "bad_channel")
    await user.should_see(content="1 quarantined sample,", marker="quarantine-count", retries=30)
    await user.should_see(content="Bad channel name", marker=f"held-reason {_key('lathe-1', 1)}")
    _choose(user, "filter-range", "day")
    await user.should_see(content="No quarantined samples match these filters.", retries=30)
    _choose(user, "filter-reason", "")
    _choose(user, "filter-device", "press-07")
    await user.should_see(content=f"{many} quarantined samples", retries=30)


async def test_the_device_page_links_to_the_devices_quarantine(
    user: User, database: Database
) -> None:
    async with database.session() as session:
        for device in ("press-07", "lathe-1"):
            await devices.create_device(session, actor=BOB, device_id=device)
    await _hold(
        database,
        *(_held("press-07", n, "bad_value", "{}", timedelta(minutes=n)) for n in range(3)),
        _held("lathe-1", 1, "bad_value", "{}", timedelta(0)),
    )
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/press-07")
    await user.should_see(content="3 quarantined samples", marker="quarantine-link", retries=30)
    user.find(marker="quarantine-link").click()
    await user.should_see(content="3 quarantined samples,", marker="quarantine-count", retries=30)
    await user.should_not_see(marker=f"held-seq {_key('lathe-1', 1)}")


async def test_a_viewer_has_neither_the_page_nor_the_link(user: User, database: Database) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=BOB, device_id="press-07")
    await _hold(database, _held("press-07", 1, "bad_value", HOSTILE, timedelta(0)))
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.should_see(marker="nav Devices", retries=30)
    await user.should_not_see(marker="nav Quarantine")
    await user.open("/telemetry/quarantine")
    await user.should_see(content="telemetry:quarantine", marker="not-allowed", retries=30)
    await user.should_not_see(marker="quarantine")
    await user.open("/devices/press-07")
    await user.should_see(marker="history-link", retries=30)
    await user.should_not_see(marker="quarantine-link")


@pytest.mark.usefixtures("bea", "no_watch")
async def test_a_demoted_admins_open_page_reads_nothing_more(
    user: User, database: Database
) -> None:
    await _hold(
        database,
        _held("press-07", 1, "too_many_channels", LONG, timedelta(0)),
        _held("lathe-1", 1, "bad_value", "{}", timedelta(hours=1)),
    )
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/telemetry/quarantine")
    await user.should_see(marker=f"held-show {_key('press-07', 1)}", retries=30)
    await change_ada(database, "demoted")

    user.find(marker=f"held-show {_key('press-07', 1)}").click()
    await refused(user)
    await user.should_not_see(marker="raw-dialog")
    _choose(user, "filter-device", "lathe-1")
    required = "'telemetry:quarantine' is required"
    await eventually(lambda: sum(required in m for m in user.notify.messages) == 2)
    await user.should_see(content="2 quarantined samples", marker="quarantine-count")
