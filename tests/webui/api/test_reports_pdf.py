"""/api/v1/reports/…?format=pdf: the report as a PDF, times in UTC, audited like the CSV."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pypdf import PdfReader

from core.db.engine import Database
from core.services.reports import pdf
from tests.core.presence_data import add_device, add_period
from tests.webui.api.helpers import audit_entries
from tests.webui.conftest import LoginAs
from webui.api import reports as report_routes

OFFLINE = "/api/v1/reports/offline-events"
NIGHT = {"from": "2026-03-09T00:00:00Z", "to": "2026-03-11T00:00:00Z", "format": "pdf"}


@pytest.fixture
async def history(database: Database) -> None:
    """mill-01 lost its link from 23:00 to 00:30 UTC across the night of 9 to 10 March."""
    await add_device(database, "mill-01", name="Mühle 1 → Süd", created="2026-03-01 00:00")
    await add_period(database, "mill-01", "lost", "2026-03-09 23:00", "2026-03-10 00:30")


async def test_a_pdf_export_holds_the_rows_in_utc_and_is_audited(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    admin = await login_as("ada")
    response = await client.get(OFFLINE, params=NIGHT, headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="offline-events-')
    assert disposition.endswith('.pdf"')
    [page] = PdfReader(io.BytesIO(response.content)).pages
    text = page.extract_text()
    assert text.startswith("Offline events\n")
    assert (
        "Asked for: Device: all devices · From: 2026-03-09 00:00:00 UTC · "
        "To: 2026-03-11 00:00:00 UTC"
    ) in text
    assert "times in UTC · 1 row\n" in text
    row = "Mühle 1 → Süd (mill-01) 2026-03-09 23:00:00 UTC 2026-03-10 00:30:00 UTC 5,400 s lost"
    assert row in " ".join(text.split())
    exports = await audit_entries(client, admin, action="reports.export")
    assert [(e["target_id"], e["after"]["format"], e["after"]["rows"]) for e in exports] == [
        ("offline-events", "pdf", 1)
    ]


async def test_an_availability_pdf_reads_in_the_zone_its_days_are_counted_in(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    admin = await login_as("ada")
    asked = {**NIGHT, "tz": "Europe/Berlin"}
    response = await client.get("/api/v1/reports/availability", params=asked, headers=admin)
    assert response.status_code == 200, response.text
    text = " ".join(PdfReader(io.BytesIO(response.content)).pages[0].extract_text().split())
    # 00:00 UTC is 01:00 in Berlin (CET); the days are Berlin's.
    assert "From: 2026-03-09 01:00:00 CET" in text, text
    assert "times in Europe/Berlin" in text, text


async def test_a_server_without_the_font_says_so_and_records_no_export(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    history: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(pdf, "FONT_DIR", tmp_path)
    admin = await login_as("ada")
    response = await client.get(OFFLINE, params=NIGHT, headers=admin)
    assert response.status_code == 503, response.text
    assert "apt-get install fonts-dejavu-core" in response.json()["detail"]
    assert await audit_entries(client, admin, action="reports.export") == []


async def test_pdfs_are_bounded_in_rows_and_drawn_one_at_a_time(
    client: httpx.AsyncClient, login_as: LoginAs, history: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await login_as("ada")
    monkeypatch.setattr(report_routes, "MAX_PDF_ROWS", 0)
    too_long = await client.get(OFFLINE, params=NIGHT, headers=admin)
    assert too_long.status_code == 422, too_long.text
    assert too_long.json() == {
        "detail": "a PDF holds at most 0 rows and this report has 1: narrow it, or take the CSV",
        "field": "format",
    }
    monkeypatch.setattr(report_routes, "MAX_PDF_ROWS", 10)
    drawn = report_routes.pdf_bytes

    def slow(*args: object, **kwargs: Any) -> bytes:
        time.sleep(0.5)  # in the drawing thread: the second request arrives meanwhile
        return drawn(*args, **kwargs)

    monkeypatch.setattr(report_routes, "pdf_bytes", slow)
    first, second = await asyncio.gather(
        client.get(OFFLINE, params=NIGHT, headers=admin),
        client.get(OFFLINE, params=NIGHT, headers=admin),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 429]
    busy = first if first.status_code == 429 else second
    assert busy.headers["retry-after"] == str(report_routes.DRAWING_RETRY_S)
    assert "another report PDF is being drawn" in busy.json()["detail"]
    exports = await audit_entries(client, admin, action="reports.export")
    assert len(exports) == 1  # neither refusal recorded an export
    again = await client.get(OFFLINE, params=NIGHT, headers=admin)
    assert again.status_code == 200  # drawing one ended: the next is drawn
