"""/api/v1/reports: each report as JSON, or ``?format=csv`` or ``?format=pdf`` as a download.

One route per report, in a module per report (each with its ``router``, included by
``webui.api``); they share ``respond``. Each checks
``reports:read`` and its data's read permission on every request, against the caller's live
sign-in session; a CSV or PDF export is audited in the request's transaction, which commits
before the file is sent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BusyError, InvalidError
from core.services import reports
from core.services.actor import Actor
from core.services.reports import Table
from core.services.reports.pdf import pdf_bytes

# fpdf2 draws ~170 rows a second on these 2 cores (10,000 rows: 60 s under load), holding
# the GIL most of that time even off the event loop: 2,000 rows (~50 pages, seconds to draw)
# is more than a person reads on paper, and one PDF at a time per process keeps a few
# parallel requests from starving the pages and the ingest it also serves.
MAX_PDF_ROWS = 2_000
DRAWING_RETRY_S = 5
_drawing: set[str] = set()  # the report whose PDF this process is drawing, if any

FormatQuery = Annotated[
    Literal["json", "csv", "pdf"],
    Query(description="json (the default), or a download: csv, or pdf (times in UTC)"),
]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


class ColumnOut(BaseModel):
    """A report column: its key in each row, its heading, the unit of its values."""

    key: str
    heading: str
    unit: str


class ReportOut(BaseModel):
    """A report: what was asked, its columns, and its rows (times UTC ISO 8601, decimals as
    exact strings, null where there is nothing, such as the end of a period still open)."""

    report: str
    title: str
    filters: dict[str, str]
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]


def _json_value(value: reports.Value) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def as_json(table: Table) -> ReportOut:
    """The report as the API's JSON body."""
    return ReportOut(
        report=table.name,
        title=table.title,
        filters=dict(table.filters),
        columns=[ColumnOut(key=c.key, heading=c.heading, unit=c.unit) for c in table.columns],
        rows=[{k: _json_value(v) for k, v in row.items()} for row in table.rows],
    )


async def respond(
    session: AsyncSession,
    *,
    actor: Actor,
    table: Table,
    format: reports.Format | str,
    zone: tzinfo = UTC,
) -> ReportOut | Response:
    """The JSON body, or the audited download in ``format`` (a PDF's times in ``zone``)."""
    if format == "json":
        return as_json(table)
    if format not in MEDIA_TYPES:
        msg = f"no report format {format!r}: json, csv or pdf"
        raise ValueError(msg)
    kind: reports.Format = "pdf" if format == "pdf" else "csv"
    if kind == "pdf" and len(table.rows) > MAX_PDF_ROWS:
        msg = (
            f"a PDF holds at most {MAX_PDF_ROWS:,} rows and this report has "
            f"{len(table.rows):,}: narrow it, or take the CSV"
        )
        raise InvalidError(msg, field="format")
    if kind == "pdf" and _drawing:
        msg = "another report PDF is being drawn: try again in a few seconds"
        raise BusyError(msg, retry_after=DRAWING_RETRY_S)
    if kind == "pdf":
        _drawing.add(table.name)  # no await since the check above: one request gets through
    try:
        await reports.record_export(session, actor=actor, table=table, format=kind)
        now = datetime.now(UTC)
        if kind == "pdf":  # off the event loop, one at a time: see MAX_PDF_ROWS
            body: str | bytes = await asyncio.to_thread(pdf_bytes, table, zone=zone, made_at=now)
        else:
            body = reports.csv_text(table)
    finally:
        if kind == "pdf":
            _drawing.clear()
    return Response(
        body,
        media_type=MEDIA_TYPES[kind],
        headers={
            "Content-Disposition": f'attachment; filename="{reports.filename(table, kind, now)}"'
        },
    )
