"""The audit page's body: filters, a one-target chip, the CSV button and the paged table.

A filter change reads the first page of what it now chooses; the export downloads the
same set through /audit/export.csv, whose own request checks the reader again.
"""

from __future__ import annotations

from urllib.parse import urlencode

from nicegui import ui

from core.errors import DomainError
from core.services import audit_names, audit_search
from core.services.audit_search import AuditQuery
from webui.components.audit_filters import AuditFilters
from webui.components.audit_table import AuditTable
from webui.forms import allowed
from webui.services import Services

SYSTEM_ACTORS = ["system", "server"]  # who acts for nobody: deadlines, retention, clears


class AuditView:
    """The filters, the export button and the table; a filter change reads the first page."""

    def __init__(self, services: Services, actions: list[str], people: list[str]) -> None:
        self.database = services.database
        self.filters = AuditFilters(actions, [*people, *SYSTEM_ACTORS])
        self.table = AuditTable(services.database)
        self.target_id: str | None = None
        self.ready = False  # filters set from the link do not read before the table exists

    async def build(
        self, *, actor: str, action: str, target_type: str, target_id: str, q: str
    ) -> None:
        """Lay out filters (as the link asked), export and table, and read the first page."""
        if actor and actor not in self.filters.actors:
            self.filters.actors.append(actor)  # a device or a name no longer on the list
        self.filters.build()
        for field in self.filters.choices():
            field.on_value_change(self.apply)
        for typed in self.filters.times():
            typed.on("keydown.enter", self.apply)
            typed.on("blur", self.apply)
        self.filters.show_zone(self.table.zone)
        self.table.zone_changed.append(self.filters.show_zone)
        for field, wanted in (
            (self.filters.actor, actor),
            (self.filters.action, action),
            (self.filters.kind, target_type),
        ):
            if wanted in field.options:  # a link's unknown choice is no filter
                field.set_value(wanted)
        self.filters.text.set_value(q)
        with ui.row().classes("w-full items-center gap-4"):
            self.chip = ui.chip(removable=True, icon="filter_alt").mark("audit-target")
            self.chip.on("remove", self.widen)
            self.chip.set_visibility(False)
            self.error = ui.label().classes("text-negative").mark("audit-error")
            ui.space()
            ui.button("Export CSV", icon="download", on_click=self.export).props("outline").mark(
                "audit-export"
            )
        self.table.build()
        if target_id:
            await self._narrow_to(target_type, target_id)
        self.ready = True
        await self.apply()

    async def _narrow_to(self, target_type: str, target_id: str) -> None:
        """Show only entries about one thing, named on a chip that takes the filter away."""
        self.target_id = target_id
        async with self.database.session() as session:
            named = await audit_names.one(session, target_type, target_id)
        self.chip.text = f"Only {named.label}"
        self.chip.set_visibility(True)

    async def widen(self) -> None:
        """Take the one-target filter away."""
        self.target_id = None
        self.chip.set_visibility(False)
        await self.apply()

    def query(self) -> AuditQuery | None:
        """The filters as chosen, or None with the reason shown."""
        self.error.text = ""
        try:
            query = self.filters.query(self.table.zone)
        except ValueError as error:
            self.filters.show_error(error)
            return None
        except DomainError as error:
            self.error.text = error.message
            return None
        if self.target_id is None:
            return query
        return AuditQuery(**{**query.__dict__, "target_id": self.target_id})

    async def apply(self, *_: object) -> None:
        """Show the first page of what the filters now choose, to whoever is signed in now
        and may still read the log (checked here, as every page action is; the table's read
        checks again, as it does for a page turn)."""
        if not self.ready:
            return
        query = self.query()
        if query is None or await allowed(self.database, audit_search.PERMISSION) is None:
            return
        await self.table.show(query)

    async def export(self) -> None:
        """Download what the filters choose as CSV (the download's own request checks again)."""
        query = self.query()
        if query is None or await allowed(self.database, audit_search.PERMISSION) is None:
            return
        params = {k: v for k, v in self.filters.params(query).items() if v}
        if query.target_id:
            params["target_id"] = query.target_id
        ui.download.from_url(f"/audit/export.csv?{urlencode(params)}")
