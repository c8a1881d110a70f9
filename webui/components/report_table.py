"""A report's rows on screen: the Table's own columns, each value with its unit, times named.

Built on DataTable (search, sort by the plain value, pages); a new report or new filters
rebuild it, since each report has its own columns.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from nicegui import ui

from core.services.reports import Table, Value
from core.services.reports.cells import Shown, headings, shown
from webui.components.data_table import Column, DataTable

Row = tuple[int, dict[str, Value]]  # its place in the report (a stable key), its values
# Free text (a diff, a reason) wraps at a readable width; a time may break between its date
# and its clock; numbers stay whole. So a wide report fits the page rather than scroll.
WRAPPED = "whitespace-normal break-words min-w-[12rem] max-w-md"
TIME = "whitespace-normal min-w-[7.5rem]"
NUMBER = "text-right whitespace-nowrap"
SHORT = "whitespace-nowrap"  # an id, a name, an action: read whole, not split at its hyphen
MEDIUM = "whitespace-normal min-w-[8rem]"


def _sortable(value: Value) -> object:
    """A sort key that orders times, numbers and text each among themselves."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | Decimal):
        return value
    return "" if value is None else str(value)


def _classes(values: list[Value]) -> str:
    if any(isinstance(v, int | Decimal) and not isinstance(v, bool) for v in values):
        return NUMBER
    if any(isinstance(v, datetime) for v in values):
        return TIME
    longest = max((len(v) for v in values if isinstance(v, str)), default=0)
    return WRAPPED if longest > 40 else MEDIUM if longest > 16 else SHORT


def _column(shown: Shown, title: str, table: Table, zone: tzinfo) -> Column[Row]:
    column = shown.column
    classes = _classes([row[column.key] for row in table.rows])

    def show(row: Row) -> None:
        ui.label(shown.text(row[1], zone))

    return Column(
        column.key,
        title,
        show,
        sort=lambda row: _sortable(row[1][column.key]),
        classes=classes,
    )


def report_table(table: Table, zone: tzinfo) -> DataTable[Row]:
    """The rows of ``table`` under its headings, times in ``zone``."""
    rows: list[Row] = [(n, dict(row)) for n, row in enumerate(table.rows)]
    columns = shown(table.columns, table.rows)
    view = DataTable(
        [_column(s, t, table, zone) for s, t in zip(columns, headings(columns), strict=True)],
        key=lambda row: str(row[0]),
        search=lambda row: " ".join(s.text(row[1], zone) for s in columns),
        marker="report",
        noun="rows",
        empty="Nothing matched: choose a longer range or another device.",
    )
    view.set_rows(rows)
    return view
