"""/reports as a person uses it: who may open which report, filters, charts, audited downloads."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nicegui import ui
from nicegui.testing.user import User
from pypdf import PdfReader
from sqlalchemy import update

from core.db.engine import Database
from core.db.models import Device
from core.rbac import PERMISSIONS
from core.services import audit_search, device_configs, devices, offline_events, roles, users
from core.services.actor import Actor
from core.services.audit_search import AuditQuery
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_admin_screens import eventually
from tests.webui.pages.test_login import signed_in
from webui.api import reports as report_routes

pytestmark = pytest.mark.backends("one")
ADMIN = Actor(name="ada", permissions=frozenset(PERMISSIONS), roles=("Admin",))
REPORTER_PASSWORD = "reporter-password-1"
NOW = datetime.now(UTC).replace(microsecond=0)
TOKYO = ZoneInfo("Asia/Tokyo")


async def _fleet(database: Database) -> None:
    """Kiln 7 offline an hour (3 to 2 hours ago), press-2 ten minutes, lost then clean."""
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-7", name="Kiln 7")
        await devices.create_device(session, actor=ADMIN, device_id="press-2")
        # Registered two days ago, so their days before the offline periods count.
        await session.execute(update(Device).values(created_at=NOW - timedelta(days=2)))
    for device, reason, start, end in (
        ("kiln-7", "lost", NOW - timedelta(hours=3), NOW - timedelta(hours=2)),
        ("press-2", "clean", NOW - timedelta(minutes=50), NOW - timedelta(minutes=40)),
    ):
        async with database.session() as session:
            await offline_events.begin(
                session, device_id=device, reason=reason, at=start, first_news=False
            )
        async with database.session() as session:
            await offline_events.end(session, device_id=device, at=end, first_news=False)


async def _reporter(database: Database) -> uuid.UUID:
    """rita: reports:read and devices:read, but not audit:read; her role's id."""
    async with database.session() as session:
        role = await roles.create_role(
            session,
            actor=ADMIN,
            name="Reporter",
            description="",
            permissions=["reports:read", "devices:read"],
        )
        await users.bootstrap_user(
            session, username="rita", password=REPORTER_PASSWORD, roles=["Reporter"]
        )
    return role.id


def _chart(user: User) -> dict[str, Any]:
    chart = user.find(marker="report-chart").elements.pop()
    assert isinstance(chart, ui.echart)
    return chart.options


def _choose(user: User, marker: str, value: object) -> None:
    picker = user.find(marker=marker).elements.pop()
    assert isinstance(picker, ui.select)
    picker.value = value


def _rows(user: User) -> list[str]:
    """Each row on screen as its cells' texts joined by |."""
    found = []
    for element in user.find(marker="report").elements.pop().descendants():
        if element.tag == "tr" and any(m.startswith("report-row") for m in element._markers):
            found.append("|".join(e.text for e in element.descendants() if isinstance(e, ui.label)))
    return found


async def test_without_reports_read_neither_page_nor_download(user: User) -> None:
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/reports")
    await user.should_see("Your roles do not allow this page (it needs 'reports:read').")
    await user.should_not_see(marker="nav Reports")
    response = await user.http_client.get("/reports/offline-events.csv")
    assert response.status_code == 403
    assert response.json()["detail"] == "your roles do not allow this ('reports:read' is required)"


async def test_a_report_needs_the_permission_of_its_data_too(
    user: User, database: Database
) -> None:
    await _reporter(database)
    await signed_in(user, "rita", REPORTER_PASSWORD)
    await user.open("/reports")
    await user.should_see(marker="nav Reports")
    picker = user.find(marker="report-choice").elements.pop()
    assert isinstance(picker, ui.select)
    assert picker.options == {
        "offline-events": "Offline events",
        "availability": "Availability",
        "config-changes": "Configuration changes",
    }  # no audit log without audit:read
    response = await user.http_client.get("/reports/audit.pdf")
    assert response.status_code == 403
    assert response.json()["detail"] == "your roles do not allow this ('audit:read' is required)"


async def test_offline_events_chart_and_rows_narrow_to_a_device(
    user: User, database: Database
) -> None:
    await _fleet(database)
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/reports")
    # Read again once the browser has named its zone (asked once it has connected).
    await user.should_see("times in Asia/Tokyo", marker="report-summary", retries=30)
    await user.should_see("Offline events: 2 rows", marker="report-summary")
    options = _chart(user)
    assert options["xAxis"]["data"] == ["Kiln 7 (kiln-7)", "press-2"]
    assert options["yAxis"]["name"] == "Offline (min)"
    assert options["series"][0]["data"] == [60.0, 10.0]
    rows = _rows(user)
    started = (NOW - timedelta(hours=3)).astimezone(TOKYO)
    first = f"Kiln 7 (kiln-7)|{started:%Y-%m-%d %H:%M:%S} JST|"  # named, in the browser's zone
    assert any(r.startswith(first) for r in rows), rows
    assert any(r.endswith("|3,600 s|lost|0 samples|0 samples") for r in rows), rows
    assert any(r.endswith("|600 s|clean|0 samples|0 samples") for r in rows), rows

    _choose(user, "report-device", "press-2")
    await user.should_see("Offline events: 1 row ·", marker="report-summary", retries=30)
    assert len(_rows(user)) == 1
    assert _chart(user)["series"][0]["data"] == [10.0]


async def test_availability_reads_percent_per_day_on_a_0_to_100_axis(
    user: User, database: Database
) -> None:
    await _fleet(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/reports?report=availability&device=kiln-7")
    await user.should_see("Availability:", marker="report-summary", retries=30)
    options = _chart(user)
    assert (options["yAxis"]["min"], options["yAxis"]["max"]) == (0, 100)
    assert options["yAxis"]["name"] == "Online (%)"
    [series] = options["series"]
    assert series["name"] == "Kiln 7 (kiln-7)"
    assert all(v is None or 0 <= v <= 100 for v in series["data"])
    assert any(v is not None and v < 100 for v in series["data"])  # the hour offline shows
    assert all(" %" in r for r in _rows(user))


async def test_a_mistyped_time_is_explained_and_nothing_is_read(
    user: User, database: Database
) -> None:
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/reports")
    await user.should_see(marker="report-summary", retries=30)
    user.find(marker="report-from").clear().type("yesterday")
    user.find(marker="report-show").click()
    await user.should_see("write the time as YYYY-MM-DD HH:MM", retries=20)


async def _exports(database: Database) -> list[dict[str, Any]]:
    async with database.session() as session:
        page = await audit_search.search(
            session, actor=ADMIN, query=AuditQuery(action="reports.export"), limit=10, offset=0
        )
    return [dict(e.after or {}, target=e.target_id, actor=e.actor) for e in page.entries]


async def test_downloads_hold_the_report_and_are_audited(user: User, database: Database) -> None:
    await _fleet(database)
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/reports")
    # Read again once the browser has named its zone (asked once it has connected).
    await user.should_see("times in Asia/Tokyo", marker="report-summary", retries=30)
    await user.should_see("Offline events: 2 rows", marker="report-summary")
    _choose(user, "report-device", "kiln-7")
    await user.should_see("Offline events: 1 row ·", marker="report-summary", retries=30)

    user.find(marker="report-csv").click()
    csv = await user.download.next(timeout=5)
    assert csv.status_code == 200, csv.text
    header, row = csv.text.splitlines()
    assert header.startswith("device_id,device_name,started_at,ended_at,duration_s,reason")
    assert row.startswith("kiln-7,Kiln 7,") and ",3600,lost," in row, row

    user.find(marker="report-pdf").click()
    pdf = await user.download.next(timeout=5)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "times in Asia/Tokyo" in text  # the page's zone, not the API's UTC
    assert "3,600 s" in text and "JST" in text

    await eventually(lambda: True)
    exports = await _exports(database)
    assert [(e["format"], e["target"], e["rows"], e["actor"]) for e in exports] == [
        ("pdf", "offline-events", 1, "ada"),
        ("csv", "offline-events", 1, "ada"),
    ]


async def test_config_changes_and_audit_count_per_day_by_outcome_and_family(
    user: User, database: Database
) -> None:
    await _fleet(database)
    async with database.session() as session:
        for interval in (2, 3):
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="kiln-7", changes={"interval_s": interval}
            )
    await signed_in(user, "ada", ADMIN_PASSWORD)
    today = datetime.now(UTC).date().isoformat()

    await user.open("/reports?report=config-changes")
    await user.should_see("Configuration changes: 2 rows", marker="report-summary", retries=30)
    options = _chart(user)
    assert options["xAxis"]["data"] == [today]
    assert [(s["name"], s["data"]) for s in options["series"]] == [("pending", [2])]
    assert options["yAxis"]["name"] == "Versions (count)"
    rows = _rows(user)
    assert [r.split("|")[:2] for r in rows] == [["Kiln 7 (kiln-7)", "1"], ["Kiln 7 (kiln-7)", "2"]]

    _choose(user, "report-choice", "audit")
    await user.should_see("Audit log:", marker="report-summary", retries=30)
    series = {s["name"]: s["data"] for s in _chart(user)["series"]}
    # 2 devices made, 2 offline and 2 online again, 2 versions; ada's sign-in; the accounts.
    assert series["device"] == [8]
    assert series["auth"] == [1]
    assert _chart(user)["yAxis"]["name"] == "Entries (count)"


async def test_a_download_is_refused_once_the_role_no_longer_allows_it(
    user: User, database: Database
) -> None:
    role = await _reporter(database)
    await signed_in(user, "rita", REPORTER_PASSWORD)
    await user.open("/reports")
    await user.should_see("Offline events:", marker="report-summary", retries=30)
    async with database.session() as session:
        await roles.update_role(session, actor=ADMIN, role_id=role, permissions=["devices:read"])
    response = await user.http_client.get("/reports/offline-events.pdf")
    assert response.status_code == 403
    assert response.json()["detail"] == "your roles do not allow this ('reports:read' is required)"
    assert await _exports(database) == []


def _acts(user: User) -> list[list[str]]:
    """Each audit row's actor, action, target kind and target (not its id, time or change)."""
    return [row.split("|")[2:6] for row in _rows(user)]


async def test_the_audit_log_narrows_to_an_actor_and_an_action_family(
    user: User, database: Database
) -> None:
    await _fleet(database)  # ada made kiln-7 and press-2; each went offline and came back
    bob = Actor(name="bob", permissions=frozenset(PERMISSIONS), roles=("Admin",))
    async with database.session() as session:
        await users.bootstrap_user(session, username="bob", password=REPORTER_PASSWORD, roles=[])
        await devices.create_device(session, actor=bob, device_id="chiller-3", name="chiller-3")
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/reports?report=audit")
    await user.should_see("Audit log: 11 rows", marker="report-summary", retries=30)
    await user.should_see("Actor: anyone · Action: any · Target kind: any · Target: any")
    device = user.find(marker="report-device").elements.pop()
    assert isinstance(device, ui.select) and device.label == "Target device"
    actor = user.find(marker="report-actor").elements.pop()
    assert isinstance(actor, ui.select)
    assert list(actor.options) == ["", "ada", "bob", "vic", "system", "server"]
    action = user.find(marker="report-action").elements.pop()
    assert isinstance(action, ui.select)
    assert list(action.options) == [
        *("", "auth", "auth.login", "device", "device.create", "device.offline"),
        *("device.online", "user", "user.create"),
    ]  # as the audit page offers them: families, each followed by its actions

    _choose(user, "report-actor", "bob")
    await user.should_see("Audit log: 1 row · Actor: bob ·", marker="report-summary", retries=30)
    assert _acts(user) == [["bob", "device.create", "device", "chiller-3"]]  # not "(chiller-3)"

    _choose(user, "report-actor", "")
    _choose(user, "report-action", "device")
    await user.should_see("Audit log: 7 rows · Actor: anyone · Action: device ·", retries=30)
    assert _acts(user) == [
        ["ada", "device.create", "device", "Kiln 7 (kiln-7)"],
        ["ada", "device.create", "device", "press-2"],
        ["Kiln 7 (kiln-7)", "device.offline", "device", "Kiln 7 (kiln-7)"],
        ["Kiln 7 (kiln-7)", "device.online", "device", "Kiln 7 (kiln-7)"],
        ["press-2 (device:press-2)", "device.offline", "device", "press-2"],
        ["press-2 (device:press-2)", "device.online", "device", "press-2"],
        ["bob", "device.create", "device", "chiller-3"],
    ]

    user.find(marker="report-csv").click()  # the download asks what the page asked
    csv = await user.download.next(timeout=5)
    assert csv.status_code == 200, csv.text
    assert [line.split(",")[4] for line in csv.text.splitlines()[1:]] == [
        *("device.create", "device.create", "device.offline", "device.online"),
        *("device.offline", "device.online", "device.create"),
    ]

    _choose(user, "report-choice", "offline-events")  # the audit log's own filters go away
    await user.should_see("Offline events:", marker="report-summary", retries=30)
    assert device.label == "Device"
    assert not action.visible


async def test_a_refused_download_is_answered_as_the_api_answers_it(
    user: User, database: Database
) -> None:
    """An unknown device is a 404, a PDF asked while one is drawn a 429: not all 422."""
    await _fleet(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    unknown = await user.http_client.get("/reports/offline-events.csv", params={"device": "nope"})
    assert unknown.status_code == 404, unknown.text
    assert "nope" in unknown.json()["detail"]
    report_routes._drawing.add("another")  # as while another request's PDF is drawn
    try:
        busy = await user.http_client.get("/reports/offline-events.pdf")
    finally:
        report_routes._drawing.clear()
    assert busy.status_code == 429, busy.text
    assert busy.headers["retry-after"] == str(report_routes.DRAWING_RETRY_S)
    assert await _exports(database) == []
