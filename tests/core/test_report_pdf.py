"""A report's PDF, read back as a viewer reads it: every figure, in the zone asked, nothing cut."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from core.services.reports import Column, Table, Value
from core.services.reports.pdf import pdf_bytes

BERLIN = ZoneInfo("Europe/Berlin")
MADE = datetime(2026, 11, 30, 17, 5, 9, tzinfo=UTC)
LONG = "spindle_temp: 41.375 °C → 44.000 °C; " + "x" * 150  # one word wider than any column
COLUMNS = (
    Column("device_id", "Device"),
    Column("started_at", "Started"),
    Column("ended_at", "Ended"),
    Column("duration_s", "Duration", "s"),
    Column("online_pct", "Online", "%"),
    Column("change", "Change"),
)


def _rows(count: int) -> tuple[dict[str, Value], ...]:
    return tuple(
        {
            "device_id": f"kiln-{n}",
            "started_at": datetime(2026, 7, 1, 10, n % 60, 5, tzinfo=UTC),  # summer: CEST
            "ended_at": None if n == 0 else datetime(2026, 12, 1, 11, 0, tzinfo=UTC),  # CET
            "duration_s": 3600 + n,
            "online_pct": Decimal("99.50"),
            "change": LONG,
        }
        for n in range(count)
    )


def _table(rows: int, columns: tuple[Column, ...] = COLUMNS) -> Table:
    keys = {c.key for c in columns}
    return Table(
        name="offline-events",
        title="Offline events",
        columns=columns,
        rows=tuple({k: v for k, v in row.items() if k in keys} for row in _rows(rows)),
        filters={"device": "kiln-7", "from": "2026-07-01T00:00:00+00:00"},
    )


def _read(table: Table) -> PdfReader:
    return PdfReader(io.BytesIO(pdf_bytes(table, zone=BERLIN, made_at=MADE)))


def test_the_pdf_holds_every_figure_in_the_zone_asked_with_units() -> None:
    reader = _read(_table(3))
    text = reader.pages[0].extract_text()
    assert text.startswith("Offline events\n")
    assert "Asked for: Device: kiln-7 · From: 2026-07-01 02:00:00 CEST" in text  # in the zone
    assert "Made 2026-11-30 18:05:09 CET · times in Europe/Berlin · 3 rows" in text
    assert "2026-07-01 12:00:05 CEST" in text  # 10:00 UTC in summer
    assert "2026-12-01 12:00:00 CET" in text  # 11:00 UTC in winter
    assert "—" in text  # the period still open
    assert re.findall(r"3,60[0-2] s", text) == ["3,600 s", "3,601 s", "3,602 s"]
    assert text.count("99.50 %") == 3
    assert "41.375 °C → 44.000 °C" in text  # not Latin-1: the embedded font draws it
    flat = re.sub(r"\s", "", text)
    assert flat.count("x" * 150) == 3  # wrapped in its cell, not one letter cut
    assert reader.metadata is not None and reader.metadata.title == "Offline events"


def test_many_rows_run_over_numbered_pages_and_many_columns_turn_landscape() -> None:
    reader = _read(_table(60))
    count = len(reader.pages)
    assert count > 2
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert f"Offline events · page {number} of {count}" in text
        # The headings again on every page, each word whole (never "Durat/ion").
        assert re.search(r"(^|\n)Device Started Ended Duration Online Change\n", text), text
        assert page.mediabox.width > page.mediabox.height  # six columns: landscape
    every = "".join(p.extract_text() for p in reader.pages)
    assert [int(n) for n in re.findall(r"^kiln-(\d+) 2026", every, re.M)] == list(range(60))

    narrow = _read(_table(2, COLUMNS[:3])).pages[0]
    assert narrow.mediabox.width < narrow.mediabox.height  # three columns fit upright


def test_an_empty_report_says_nothing_matched() -> None:
    text = _read(_table(0)).pages[0].extract_text()
    assert "0 rows" in text
    assert "Nothing matched what was asked." in text
    assert "Duration" in text


def test_dates_and_yes_no_read_as_words() -> None:
    columns = (Column("day", "Day"), Column("applied", "Applied"), Column("count", "Count", "n"))
    table = Table(
        name="t",
        title="T",
        columns=columns,
        rows=({"day": date(2026, 11, 30), "applied": True, "count": 1289},),
        filters={},
    )
    text = _read(table).pages[0].extract_text()
    assert "Asked for: everything" in text
    assert "2026-11-30 yes 1,289 n" in text


def test_a_wide_report_breaks_no_word_and_no_value() -> None:
    """Eleven columns on a landscape page: narrow ones keep their headings and values whole."""
    keys = ["device_id", "version", "changed_at", "changed_by", "source", "changes"]
    keys += ["outcome", "outcome_at", "detail", "note", "more"]
    columns = tuple(Column(k, k.replace("_", " ").capitalize()) for k in keys)
    row: dict[str, Value] = {k: "x" for k in keys}
    row |= {"version": 12, "source": "edit", "outcome": "rejected", "changed_at": MADE}
    row |= {"outcome_at": MADE, "changes": "interval_s: 1 → 2; " * 6, "detail": LONG[:60]}
    table = Table(name="t", title="T", columns=columns, rows=(row,) * 3, filters={})
    text = _read(table).pages[0].extract_text()
    for word in ("Version", "Source", "Outcome", "rejected", "edit", "2026-11-30"):
        assert len(re.findall(rf"(?<!\w){word}(?!\w)", text)) >= 1, (word, text)
    assert text.count("rejected") == 3
