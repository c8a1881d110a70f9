"""A table with headers, a search box, sorting and pages, for lists that may be long.

The page hands the table its rows once per refresh (plain data, read in one go). Searching,
sorting and paging happen here in Python on that data, and only the rows of the page on
screen become elements: a list of 1,000 devices builds as fast as one of 25, and each cell
stays a NiceGUI element a page can update live, mark for tests or give a button. Nothing
here reads the database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from nicegui import ui

from webui.forms import view_only

R = TypeVar("R")
PAGE_SIZES = [25, 50, 100]  # a laptop screen shows about 25 rows; 100 still builds quickly
SEARCH_DEBOUNCE_MS = 250  # one search per pause in typing, not one per key


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: its heading, how a row's cell is built, and how rows sort by it."""

    key: str
    label: str
    cell: Callable[[R], object]  # builds the cell's content (inside the cell element)
    sort: Callable[[R], Any] | None = None  # None: not sortable by this column
    classes: str = ""  # widths and alignment of the column's cells


def _order(value: Any) -> tuple[bool, Any]:
    """A sort key under which missing values go last and text ignores case."""
    if isinstance(value, str):
        return (value == "", value.casefold())
    return (value is None, value if value is not None else 0)


class DataTable(Generic[R]):
    """Rows of ``R`` under sortable headings, narrowed by a search box, shown a page at a time.

    ``search`` gives the text a row is found by (case does not matter); ``keep``, when
    set, is a further filter the page controls (the fleet's status filter). ``after_page``
    is told which rows are on screen after each build.
    """

    def __init__(
        self,
        columns: Sequence[Column[R]],
        *,
        key: Callable[[R], str],
        search: Callable[[R], str],
        marker: str,
        row_marker: Callable[[R], str] | None = None,
        noun: str = "rows",
        empty: str = "Nothing here yet.",
        sort: str | None = None,
        descending: bool = False,
        query: str = "",
        page_size: int = PAGE_SIZES[0],
        after_page: Callable[[list[R]], None] | None = None,
    ) -> None:
        self.columns = list(columns)
        self.key = key
        self.search_text = search
        self.marker = marker
        self.row_marker = row_marker or (lambda row: f"{marker}-row {key(row)}")
        self.noun = noun
        self.empty_text = empty
        self.sort_key = sort
        self.descending = descending
        self.page = 1
        self.page_size = page_size
        self.keep: Callable[[R], bool] | None = None
        self.after_page = after_page
        self.rows: list[R] = []
        self._haystacks: list[str] = []
        self.shown: list[R] = []
        self.matching = 0
        self._shown_keys: list[str] | None = None
        # data-table / data-part / data-column name the parts for a browser test to find.
        self.root = ui.column().classes("w-full gap-2").props(f'data-table="{marker}"')
        with self.root:
            with ui.row().classes("w-full items-center gap-4"):
                self.search = ui.input(placeholder=f"Search {noun}", value=query)
                self.search.props(f"dense outlined clearable debounce={SEARCH_DEBOUNCE_MS}")
                self.search.props(f'aria-label="Search {noun}"').classes("w-72")
                self.search.mark(f"{marker}-search")
                with self.search.add_slot("prepend"):
                    ui.icon("search")
                self.search.on_value_change(lambda: self.show(first_page=True))
                self.tools = ui.row().classes("items-center gap-2")  # the page's own controls
            with (
                ui.element("div").classes("w-full overflow-x-auto"),
                ui.element("table").classes("w-full text-left border-collapse").mark(marker),
            ):
                with ui.element("thead"), ui.element("tr").classes("border-b border-slate-300"):
                    self.headings = {column.key: self._heading(column) for column in self.columns}
                self.body = ui.element("tbody")
            self.empty = ui.label(empty).classes("text-slate-600").mark(f"{marker}-empty")
            self.empty.props('data-part="empty"')
            with ui.row().classes("w-full items-center justify-end gap-4 text-sm text-slate-700"):
                self.count = ui.label().props('data-part="count"').mark(f"{marker}-count")
                self.size = ui.select(
                    PAGE_SIZES, value=page_size, label="Rows per page", on_change=self._resize
                )
                self.size.props("dense options-dense").classes("w-32")
                self.pager = ui.pagination(1, 1, direction_links=True, on_change=self._turn)
                self.pager.props('max-pages=7 boundary-numbers data-part="pages"').mark(
                    f"{marker}-pages"
                )

    def _heading(self, column: Column[R]) -> ui.element:
        cell = ui.element("th").classes(f"px-3 py-2 font-medium text-slate-600 {column.classes}")
        cell.props(f'data-column="{column.key}"')
        with cell:
            if column.sort is None:
                ui.label(column.label)
                return cell
            with (
                ui.row()
                .classes("items-center gap-1 cursor-pointer select-none no-wrap")
                .on("click", lambda c=column: self.sort_by(c.key))
                .mark(f"{self.marker}-sort {column.key}")
            ):
                ui.label(column.label)
                ui.icon("unfold_more").classes("text-base text-slate-400").props("aria-hidden=true")
        return cell

    # -- data ----------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[R]) -> None:
        """Take the rows of a refresh (their search text is worked out here, once) and show."""
        self.rows = list(rows)
        self._haystacks = [self.search_text(row).casefold() for row in self.rows]
        self._shown_keys = None
        self.show()

    @view_only
    def sort_by(self, key: str) -> None:
        """Sort by the column ``key``; asked again, the other way round."""
        if self.sort_key == key:
            self.descending = not self.descending
        else:
            self.sort_key, self.descending = key, False
        self.show(first_page=True)

    def matches(self) -> list[R]:
        """The rows the search and the page's filter let through, in the chosen order."""
        needle = (self.search.value or "").strip().casefold()
        found = [
            row
            for row, haystack in zip(self.rows, self._haystacks, strict=True)
            if needle in haystack and (self.keep is None or self.keep(row))
        ]
        column = next((c for c in self.columns if c.key == self.sort_key), None)
        if column is not None and column.sort is not None:
            by = column.sort
            found.sort(key=lambda row: _order(by(row)), reverse=self.descending)
        return found

    # -- showing -------------------------------------------------------------------------

    @view_only
    def show(self, *, first_page: bool = False) -> None:
        """Show the page of rows that match now (rebuilt only when its rows changed)."""
        found = self.matches()
        self.matching = len(found)
        pages = max(1, -(-len(found) // self.page_size))
        self.page = 1 if first_page else min(self.page, pages)
        start = (self.page - 1) * self.page_size
        self.shown = found[start : start + self.page_size]
        self._show_controls(pages, start)
        keys = [self.key(row) for row in self.shown]
        if keys == self._shown_keys:
            return
        self._shown_keys = keys
        self.body.clear()
        with self.body:
            for row in self.shown:
                with (
                    ui.element("tr")
                    .classes("border-b border-slate-200 hover:bg-slate-50 align-top")
                    .mark(self.row_marker(row))
                ):
                    for column in self.columns:
                        with ui.element("td").classes(f"px-3 py-2 {column.classes}"):
                            column.cell(row)
        if self.after_page is not None:
            self.after_page(self.shown)

    def _show_controls(self, pages: int, start: int) -> None:
        self.empty.text = self.empty_text if not self.rows else f"No {self.noun} match."
        self.empty.set_visibility(not self.shown)
        if self.shown:
            last = start + len(self.shown)
            count = f"{start + 1}\N{EN DASH}{last} of {self._many(self.matching)}"
        else:
            count = f"0 of {self._many(len(self.rows))}"
        if count != self.count.text:
            self.count.text = count
        if (self.pager.max, self.pager.value) != (pages, self.page):
            self.pager.max = pages
            self.pager.value = self.page
        for key, heading in self.headings.items():
            sorted_here = key == self.sort_key
            state = ("descending" if self.descending else "ascending") if sorted_here else "none"
            if heading.props.get("aria-sort") != state:
                heading.props(f"aria-sort={state}")
                for icon in heading.descendants():
                    if isinstance(icon, ui.icon):
                        icon.name = (
                            ("arrow_downward" if self.descending else "arrow_upward")
                            if sorted_here
                            else "unfold_more"
                        )

    def _many(self, count: int) -> str:
        """``1,000 devices``, ``1 device``."""
        return (
            f"{count:,} {self.noun[:-1] if count == 1 and self.noun.endswith('s') else self.noun}"
        )

    @view_only
    def _turn(self) -> None:
        if self.pager.value != self.page:
            self.page = int(self.pager.value or 1)
            self.show()

    @view_only
    def _resize(self) -> None:
        self.page_size = int(self.size.value or PAGE_SIZES[0])
        self.show(first_page=True)
