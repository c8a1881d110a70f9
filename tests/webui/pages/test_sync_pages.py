"""Each station's sync state on the fleet and device pages, live, and the conflict log for
those who manage users, in words, in the browser's zone, never with a password hash."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.services import sync_peers, users
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from tests.webui.pages.test_open_pages import change_ada, refused
from tests.webui.sync_data import BEHIND, Seeded, seed
from webui.components import sync_state
from webui.components.browser_time import named

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

TOKYO = ZoneInfo("Asia/Tokyo")  # never the test machine's zone: UTC+9, no summer time


@pytest.fixture
async def seeded(database: Database, monkeypatch: pytest.MonkeyPatch) -> Seeded:
    """The fleet and conflicts of tests/webui/sync_data.py; pages re-read sync quickly."""
    monkeypatch.setattr(sync_state, "REFRESH_S", 0.1)
    return await seed(database)


def _in_tokyo(user: User) -> None:
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"


async def test_the_fleet_shows_each_stations_sync_state_live(
    user: User, database: Database, seeded: Seeded
) -> None:
    _in_tokyo(user)
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see(content=f"{BEHIND} changes behind", marker="sync-state press-07")
    await user.should_see(content="up to date", marker="sync-state lathe-1")
    await user.should_see(content="never synced", marker="sync-state kiln-3")
    await user.should_see(content="2 edits waiting", marker="sync-waiting press-07")
    await user.should_see(content="2 conflicts", marker="sync-conflicts press-07")
    # The fleet's narrow column says only what is not zero.
    await user.should_not_see(marker="sync-waiting lathe-1")
    await user.should_not_see(marker="sync-conflicts lathe-1")
    await user.should_not_see(marker="sync-last kiln-3")
    last = f"last sync {named(seeded.synced_at, TOKYO)}"
    await user.should_see(content=last, marker="sync-last press-07", retries=40)

    # press-07 catches up and its edits are answered: the row follows without a reload.
    async with database.session() as session:
        await sync_peers.note_contact(session, device_id="press-07", cursor=seeded.head, pending=0)
    await user.should_see(content="up to date", marker="sync-state press-07", retries=40)
    await user.should_not_see(marker="sync-waiting press-07", retries=40)


async def test_the_device_page_says_the_stations_sync_state_in_words(
    user: User, seeded: Seeded
) -> None:
    _in_tokyo(user)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/press-07")
    await user.should_see(content=f"Sync: {BEHIND} changes behind", marker="sync-state press-07")
    await user.should_see(content="2 edits waiting", marker="sync-waiting press-07")
    last = f"last sync {named(seeded.synced_at, TOKYO)}"
    await user.should_see(content=last, marker="sync-last press-07", retries=40)
    conflicts = user.find(marker="sync-conflicts press-07").elements.pop()
    assert isinstance(conflicts, ui.link) and conflicts.text == "2 conflicts"
    assert conflicts.props["href"] == "/sync/conflicts?station=press-07"

    await user.open("/devices/kiln-3")
    await user.should_see(content="Sync: never synced", marker="sync-state kiln-3")
    await user.should_see(content="no edits waiting", marker="sync-waiting kiln-3")
    await user.should_see(content="no conflicts", marker="sync-conflicts kiln-3")


async def test_a_viewer_sees_the_count_but_no_way_into_the_conflict_log(
    user: User, seeded: Seeded
) -> None:
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/press-07")
    conflicts = user.find(marker="sync-conflicts press-07").elements.pop()
    assert isinstance(conflicts, ui.label) and conflicts.text == "2 conflicts"
    await user.should_not_see(marker="nav Sync conflicts")

    await user.open("/sync/conflicts")
    await user.should_see(marker="not-allowed")
    await user.should_see("users:manage")
    await user.should_not_see(marker="conflicts")
    await user.should_not_see("olga")


async def test_an_admin_reads_the_conflict_log_in_words_and_narrows_it_to_a_station(
    user: User, seeded: Seeded
) -> None:
    _in_tokyo(user)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.should_see(marker="nav Sync conflicts")
    await user.open("/sync/conflicts")
    await user.should_see(content="4 conflicts, newest first", marker="conflict-count")
    for subject in ("Configuration of press-07", "olga's role Admin", "User olga"):
        await user.should_see(kind=ui.label, content=subject)
    for words in ("sampling interval", "role given", "display name", "password"):
        await user.should_see(kind=ui.label, content=words)
    await user.should_see(kind=ui.label, content="Olga K.")
    await user.should_see(kind=ui.label, content="taken away")
    await user.should_see(kind=ui.label, content="by olga at press-07")
    await user.should_see(kind=ui.label, content="by ada on the server")
    await user.should_see(kind=ui.label, content=named(seeded.kept_name_at, TOKYO), retries=40)
    await user.should_see(kind=ui.label, content=named(seeded.lost_name_at, TOKYO))
    await user.should_see(kind=ui.label, content="password changed")
    shown = " ".join(label.text for label in user.find(ui.label).elements)
    for password_hash in seeded.hashes:
        assert password_hash not in shown
    assert "$argon2" not in shown and seeded.olga_id not in shown

    picker = user.find(marker="conflict-station").elements.pop()
    assert isinstance(picker, ui.select)
    assert list(picker.options) == ["", "lathe-1", "press-07"]
    picker.value = "lathe-1"
    await user.should_see(
        content="1 conflict from lathe-1's edits, newest first", marker="conflict-count"
    )
    await user.should_not_see(kind=ui.label, content="User olga")
    await user.should_see(kind=ui.label, content="olga's role Admin")

    await user.open("/sync/conflicts?station=press-07")  # as the device page links it
    await user.should_see(
        content="2 conflicts from press-07's edits, newest first", marker="conflict-count"
    )
    await user.should_not_see(kind=ui.label, content="Configuration of press-07")


async def test_narrowing_the_log_is_refused_once_the_admin_is_demoted(
    user: User, database: Database, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webui.components import session_watch

    monkeypatch.setattr(session_watch, "CHECK_EVERY_S", 3600.0)  # the action itself refuses
    async with database.session() as session:
        await users.bootstrap_user(
            session, username="bea", password="bea-password-1", roles=["Admin"]
        )
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/sync/conflicts")
    await user.should_see(content="4 conflicts", marker="conflict-count")
    await change_ada(database, "demoted")
    picker = user.find(marker="conflict-station").elements.pop()
    assert isinstance(picker, ui.select)
    picker.value = "lathe-1"
    await refused(user)
    await user.should_see(content="4 conflicts, newest first", marker="conflict-count")
