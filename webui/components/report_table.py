"""A report's rows on screen: the Table's own columns, each value with its unit, times named.

Built on DataTable (search, sort by the plain value, pages); a new report or new filters
rebuild it, since each report has its own columns.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from nicegui import ui

from core.services.reports import Column as ReportColumn
from core.services.reports import Table, Value
from core.services.reports.cells import cell
from webui.components.data_table import Column, DataTable

Row = tuple[int, dict[str, Value]]  # its place in the report (a stable key), its values
# Free text (a diff, a reason) wraps at a readable width; short values stay on one line.
WRAPPED = "whitespace-normal break-words min-w-[12rem] max-w-md"
ONE_LINE = "whitespace-nowrap"


def _sortable(value: Value) -> object:
    """A sort key that orders times, numbers and text each among themselves."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | Decimal):
        return value
    return "" if value is None else str(value)


def _column(column: ReportColumn, table: Table, zone: tzinfo) -> Column[Row]:
    texts = [row[column.key] for row in table.rows]
    numeric = any(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in texts)
    long = any(isinstance(v, str) and len(v) > 40 for v in texts)
    classes = "text-right " + ONE_LINE if numeric else WRAPPED if long else ONE_LINE

    def show(row: Row) -> None:
        ui.label(cell(row[1][column.key], column, zone))

    return Column(
        column.key,
        column.heading,
        show,
        sort=lambda row: _sortable(row[1][column.key]),
        classes=classes,
    )


def report_table(table: Table, zone: tzinfo) -> DataTable[Row]:
    """The rows of ``table`` under its headings, times in ``zone``."""
    rows: list[Row] = [(n, dict(row)) for n, row in enumerate(table.rows)]
    view = DataTable(
        [_column(c, table, zone) for c in table.columns],
        key=lambda row: str(row[0]),
        search=lambda row: " ".join(cell(row[1][c.key], c, zone) for c in table.columns),
        marker="report",
        noun="rows",
        empty="Nothing matched: choose a longer range or another device.",
    )
    view.set_rows(rows)
    return view
