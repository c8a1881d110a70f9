"""The audit log as a table paged and sorted in the database, changes wrapped, names linked.

The browser holds one page of rows; a page or sort change asks the server (Quasar's
``request`` event), which reads that page as whoever is signed in at that moment
(``webui.forms.submit``): one query for the rows, one for the count, one per kind of
target for the names. Times read in the browser's zone once it has said which that is.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from nicegui import Client, background_tasks, context, ui
from nicegui.events import GenericEventArguments
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import audit_names, audit_search
from core.services.actor import Actor
from core.services.audit_search import AuditQuery
from webui.components import audit_rows
from webui.components.browser_time import ask_zone, known_zone
from webui.forms import submit

PAGE = 25  # rows a page: a screenful of entries with a few lines of change each
PAGES = [10, 25, 50, 100]  # page sizes a person may choose; 100 is still one quick read
COLUMNS: list[dict[str, Any]] = [
    {"name": "at", "label": "When", "field": "at", "align": "left", "sortable": True},
    {"name": "actor", "label": "Actor", "field": "actor", "align": "left", "sortable": True},
    {"name": "action", "label": "Action", "field": "action", "align": "left", "sortable": True},
    {"name": "target", "label": "Target", "field": "target", "align": "left", "sortable": True},
    {"name": "change", "label": "Change", "field": "change", "align": "left"},
]
# Actor and target link to their pages when they resolve; a change is one line per field,
# wrapped, never cut.
NAME_CELL = """
<q-td :props="props">
  <a v-if="props.value.href" :href="props.value.href" class="text-primary"
    >{{ props.value.label }}</a>
  <span v-else>{{ props.value.label }}</span>
</q-td>
"""
CHANGE_CELL = """
<q-td :props="props" style="white-space: normal; min-width: 18rem; overflow-wrap: anywhere">
  <div v-for="(line, i) in props.value" :key="i">{{ line }}</div>
</q-td>
"""


class AuditTable:
    """One page of the entries ``query`` matches; ``show`` reads the first page of a new one."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.query = AuditQuery()
        self.zone: tzinfo = known_zone()
        self.zone_changed: list[Any] = []  # told the browser's zone once it names one

    def build(self) -> None:
        """Lay the table out; the first page is read by ``show``."""
        pagination = {
            "page": 1,
            "rowsPerPage": PAGE,
            "rowsNumber": 0,
            "sortBy": "at",
            "descending": True,
        }
        self.table = ui.table(columns=COLUMNS, rows=[], row_key="id", pagination=pagination)
        self.table.classes("w-full").props(
            f':rows-per-page-options="{PAGES}" no-data-label="No entries match these filters."'
            " wrap-cells"
        ).mark("audit")
        self.table.add_slot("body-cell-actor", NAME_CELL.replace("props.value", "props.row.actor"))
        self.table.add_slot(
            "body-cell-target", NAME_CELL.replace("props.value", "props.row.target")
        )
        self.table.add_slot("body-cell-change", CHANGE_CELL)
        self.table.on("request", self._request, ["pagination"])
        client = context.client
        background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")

    async def show(self, query: AuditQuery) -> None:
        """Read the first page of what ``query`` matches."""
        self.query = query
        await self._read({**self.table.pagination, "page": 1})

    async def reload(self) -> None:
        """Read the page shown again."""
        await self._read(self.table.pagination)

    async def _request(self, event: GenericEventArguments) -> None:
        await self._read(event.args["pagination"])

    async def _read(self, pagination: dict[str, Any]) -> None:
        size = int(pagination.get("rowsPerPage") or PAGE)
        page = max(int(pagination.get("page") or 1), 1)
        sort = str(pagination.get("sortBy") or "at")
        descending = bool(pagination.get("descending", True))
        query, zone = self.query, self.zone

        async def work(session: AsyncSession, actor: Actor) -> tuple[list[dict[str, Any]], int]:
            found = await audit_search.search(
                session,
                actor=actor,
                query=query,
                limit=size,
                offset=(page - 1) * size,
                sort=sort,
                descending=descending,
            )
            names = await audit_names.resolve(session, found.entries)
            return [audit_rows.row(e, names, zone) for e in found.entries], found.total

        self.table.props("loading")
        try:
            read = await submit(self.database, audit_search.PERMISSION, work)
        finally:
            self.table.props(remove="loading")
        if read is None:
            return
        rows, total = read
        self.table.rows = rows
        self.table.pagination = {
            "page": page,
            "rowsPerPage": size,
            "rowsNumber": total,
            "sortBy": sort,
            "descending": descending,
        }
        self.table.update()

    async def _learn_zone(self, client: Client) -> None:
        await client.connected()
        zone = await ask_zone(client)
        if zone is None or zone == self.zone:
            return
        self.zone = zone
        with client:
            for told in self.zone_changed:
                told(zone)
            await self.reload()
