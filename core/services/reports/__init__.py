"""Reports: each one a table of plain values under named columns, served as JSON, CSV, PDF.

A report module (``offline``, ``availability``, ``config_changes``, ``audit_report``) reads
through the modules that own its tables and returns a ``Table``; the API and the page show
that one table, so the CSV, the PDF and the screen always hold the same figures. Values are
plain: ``str``, ``int``, ``Decimal`` (exact, never float), ``datetime`` (aware, UTC),
``date``, ``bool`` or ``None`` (nothing to say, such as the end of a period still open).

Every report needs ``reports:read`` and the read permission of what it shows (``REQUIRES``):
reports must not become a way round ``audit:read``. Exporting one is audited
(``reports.export``: which report, which format, which filters).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from core.services import audit
from core.services.actor import Actor

PERMISSION = "reports:read"
EXPORTED = "reports.export"
Format = Literal["json", "csv", "pdf"]
Value = str | int | Decimal | datetime | date | bool | None


@dataclass(frozen=True)
class Column:
    """One column: its key (the CSV heading and JSON field), its heading and its unit."""

    key: str  # "duration_s": a unit in the key, so a CSV column says what its numbers are
    heading: str  # "Duration", for people
    unit: str = ""  # "s", "%", "samples": shown beside every value on screen and in the PDF


@dataclass(frozen=True)
class Table:
    """A report's rows, each a mapping of column key to plain value, and what was asked."""

    name: str  # "offline-events": the route's name, the file's name
    title: str  # "Offline events"
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Value], ...]
    filters: Mapping[str, str]  # what was asked, in words: {"device": "bench-01", "from": …}

    def __post_init__(self) -> None:
        keys = {c.key for c in self.columns}
        for row in self.rows:
            if set(row) != keys:
                msg = f"a row of {self.name} has {sorted(row)}, not the columns {sorted(keys)}"
                raise ValueError(msg)


def require(actor: Actor, *also: str) -> None:
    """Raise ForbiddenError unless ``actor`` may run reports and read what this one shows."""
    actor.require(PERMISSION)
    for permission in also:
        actor.require(permission)


async def record_export(
    session: AsyncSession, *, actor: Actor, table: Table, format: Format
) -> None:
    """Audit that ``actor`` exported ``table`` as ``format``, in the caller's transaction."""
    await audit.record(
        session,
        actor=actor.name,
        action=EXPORTED,
        target_type="report",
        target_id=table.name,
        after={"format": format, "rows": len(table.rows), **table.filters},
    )


def plain(value: Value) -> str:
    """A value as CSV holds it: UTC ISO 8601 times, exact decimals, empty for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_text(table: Table) -> str:
    """The report as CSV: a heading row of column keys, then one row per report row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    for row in table.rows:
        writer.writerow([plain(row[c.key]) for c in table.columns])
    return out.getvalue()


def filename(table: Table, format: Format, now: datetime) -> str:
    """``offline-events-20261130T1712Z.csv``: the report and when it was made, in UTC."""
    return f"{table.name}-{now.astimezone(UTC):%Y%m%dT%H%MZ}.{format}"
