"""The reports page in a real Chromium: each report's chart drawn and its rows in words.

Devices and configuration versions are made through the API; offline periods and a
station's answers are written as presence and the config intake write them, into the
server's own database file (its presence would need live stations to cut).
"""

from __future__ import annotations

import asyncio
import base64
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import update

from core.db.engine import Database
from core.db.models import Device
from core.protocol.station_config import ConfigReport
from core.services import audit_checkpoints, device_configs, offline_events
from core.settings import Settings
from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

# Text no cell may show: Python's values and reprs, an ISO time with its T, a UUID.
RAW = re.compile(
    r"\bNone\b|\bTrue\b|\bFalse\b|\{'|'\}|\d{4}-\d\d-\d\dT\d\d|[0-9a-f]{8}-[0-9a-f]{4}-"
)
PERIODS = [  # device, reason, started (hours ago), ended (hours ago; None: still offline)
    ("kiln-7", "lost", 50.0, 46.5),
    ("kiln-7", "clean", 27.0, 26.25),
    ("press-2", "lost", 20.0, 16.0),
    ("chiller-3", "stale", 0.5, None),
]


def _api(url: str) -> httpx.Client:
    login = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=30
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=30)


def _configure(api: httpx.Client, device: str, changes: dict[str, Any]) -> None:
    etag = api.get(f"/devices/{device}/config").headers["etag"]
    changed = api.patch(f"/devices/{device}/config", json=changes, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text


async def _history(data: Path) -> None:
    """Registered three days ago; the offline periods; kiln-7 applied v1, press-2 refused v1."""
    # Now, not at import: in a full run this module is collected long before it runs, and the
    # open period's duration is checked against the half hour it has lasted.
    now = datetime.now(UTC).replace(microsecond=0)
    settings = Settings(
        database_url=f"sqlite:///{data.parent / 'pp.db'}",
        signing_key_file=data / "server-signing-key.pem",
    )
    key = audit_checkpoints.load_or_create_key(audit_checkpoints.key_path(settings))
    database = Database(settings.async_database_url, audit_key=key)
    try:
        async with database.session() as session:
            await session.execute(update(Device).values(created_at=now - timedelta(days=3)))
        for device, reason, started, ended in PERIODS:
            async with database.session() as session:
                await offline_events.begin(
                    session,
                    device_id=device,
                    reason=reason,
                    at=now - timedelta(hours=started),
                    first_news=False,
                )
            if ended is not None:
                async with database.session() as session:
                    await offline_events.end(
                        session, device_id=device, at=now - timedelta(hours=ended), first_news=False
                    )
        answers = [
            ConfigReport("kiln-7", 1, {"units": {"temp": "°C"}}, "applied", 1),
            ConfigReport("press-2", 0, {}, "rejected", 1, "interval too short for this sensor"),
        ]
        for answer in answers:
            async with database.session() as session:
                await device_configs.record_report(session, report=answer, news=True)
    finally:
        await database.close()


def _fleet(url: str, data: Path) -> None:
    with _api(url) as api:
        for device, name in (("kiln-7", "Kiln 7"), ("press-2", "Press 2"), ("chiller-3", "")):
            made = api.post("/devices", json={"id": device, "name": name})
            assert made.status_code == 201, made.text
        _configure(api, "kiln-7", {"units": {"temp": "°C"}})
        _configure(api, "kiln-7", {"interval_s": 2})
        _configure(api, "press-2", {"interval_s": 0.1})
    asyncio.run(_history(data))


def _chart_drawn(driver: Any) -> bool:
    """Whether the chart has a canvas of some size (ECharts draws into one)."""
    return bool(
        driver.execute_script(
            "const c = document.querySelector('.nicegui-echart canvas');"
            "return c !== null && c.width > 200 && c.height > 100;"
        )
    )


def _rows(driver: Any) -> list[str]:
    """Each row on screen, its cells' texts joined by |."""
    rows: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(\"[data-table='report'] tbody tr\")]"
        ".map(tr => [...tr.cells].map(td => td.innerText).join('|'))"
    )
    return rows


def _cut_cells(driver: Any) -> list[str]:
    cut: list[str] = driver.execute_script(
        "return [...document.querySelectorAll(\"[data-table='report'] td\")]"
        ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText)"
    )
    return cut


def _open(driver: Any, server: str, report: str, summary: str) -> list[str]:
    driver.get(f"{server}/reports?report={report}")
    _see(driver, summary)
    WebDriverWait(driver, WAIT_S).until(_chart_drawn)
    driver.save_screenshot(str(ARTIFACTS / f"reports-{report}.png"))
    rows = _rows(driver)
    assert rows, report
    # The audit report's changes are the audit log's own words, where an export's filters
    # keep the UTC ISO times they were asked in: only that column may hold one.
    shown = [r.rsplit("|", 1)[0] if report == "audit" else r for r in rows]
    assert not RAW.search("\n".join(shown)), rows
    assert _cut_cells(driver) == []
    fits = driver.execute_script(  # the whole table on the page: no column scrolled out of view
        "const t = document.querySelector(\"[data-table='report'] table\").parentElement;"
        "return t.scrollWidth <= t.clientWidth;"
    )
    assert fits, report
    return rows


def _fetched(driver: Any, path: str) -> bytes:
    """A download's bytes as the page's own request gets them (its cookie, its origin)."""
    encoded: str = driver.execute_async_script(
        "fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => arguments[1]("
        "btoa(String.fromCharCode(...new Uint8Array(b)))))",
        path,
    )
    return base64.b64decode(encoded)


def _one(rows: list[str], pattern: str) -> str:
    found = [row for row in rows if re.fullmatch(pattern, row)]
    assert len(found) == 1, (pattern, rows)
    return found[0]


def test_each_report_draws_its_chart_and_reads_in_words(
    server: str, browser: Any, tmp_path: Path
) -> None:
    _fleet(server, tmp_path / "data")
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    browser.set_window_size(1400, 1300)
    _sign_in(browser, server, *ADMIN)
    time = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T"

    rows = _open(browser, server, "offline-events", "Offline events: 4 rows")
    _one(rows, rf"Kiln 7 \(kiln-7\)\|{time}\|{time}\|12,600 s\|lost\|0 samples\|0 samples")
    _one(rows, rf"Kiln 7 \(kiln-7\)\|{time}\|{time}\|2,700 s\|clean\|0 samples\|0 samples")
    _one(rows, rf"Press 2 \(press-2\)\|{time}\|{time}\|14,400 s\|lost\|0 samples\|0 samples")
    _one(rows, rf"chiller-3\|{time}\|—\|1,[78]\d\d(\.\d+)? s\|stale\|.*")

    rows = _open(browser, server, "availability", "Availability:")
    day = r"\d{4}-\d\d-\d\d"
    share = r"\d{1,3}\.\d\d %"
    for row in rows:
        assert re.fullmatch(rf"[^|]+\|{day}(\|[\d,.]+ s){{3}}\|{share}", row), row
    assert any(row.endswith("|100.00 %") for row in rows)
    assert any(
        row.startswith("Press 2 (press-2)|") and not row.endswith("|100.00 %") for row in rows
    )

    rows = _open(browser, server, "config-changes", "Configuration changes: 3 rows")
    outcomes = sorted(row.split("|")[6] for row in rows)
    assert outcomes == ["applied", "pending", "rejected"], rows
    assert any("interval too short for this sensor" in row for row in rows)
    assert any("°C" in row for row in rows)

    # The page's PDF, fetched as its button fetches it: the sign-in cookie, the page's zone.
    pdf = _fetched(browser, "/reports/config-changes.pdf?zone=America/New_York")
    (ARTIFACTS / "reports-config-changes.pdf").write_bytes(pdf)
    text = " ".join(PdfReader(io.BytesIO(pdf)).pages[0].extract_text().split())
    assert "times in America/New_York · 3 rows" in text, text
    assert "interval too short for this sensor" in text and " EST " in text, text

    rows = _open(browser, server, "audit", "Audit log:")
    assert any("|device.create|" in row and "Kiln 7" in row for row in rows), rows
