"""/fleet: every device with its presence, last seen, backlog, sync, latest values and trend, live.

``/fleet?status=offline&q=press`` opens the table filtered (the overview links here so);
``fleet_filter`` names the statuses and which devices each keeps.
"""

from __future__ import annotations

import time

from nicegui import ui

from core.services import device_configs, devices, sync_peers
from core.services.actor import Actor
from webui.backbone.server import Backbone
from webui.components import fleet_filter
from webui.components.data_table import Column, DataTable
from webui.components.fleet_row import FleetEntry, FleetRow, status_rank
from webui.components.sync_state import SyncWatch
from webui.components.ticker import Ticker
from webui.forms import view_only
from webui.layout import frame, guard
from webui.services import Services

# Presence and last seen move all the time: the rows on screen follow them on every tick,
# while which rows match the filter, and their order, is worked out again this often.
REORDER_S = 1.0


def register(services: Services) -> None:
    """Register /fleet."""

    @ui.page("/fleet")
    async def fleet_page(status: str = "all", q: str = "") -> None:
        actor = await guard(services, "devices:read")
        if actor is None:
            return
        async with services.database.session() as session:
            listed = await devices.list_devices(session, actor=actor)
            units = await device_configs.units_by_device(session, actor=actor)
            states = await sync_peers.states(session, actor=actor)
        entries = [FleetEntry(d.id, d.name, d.last_seen_at, units.get(d.id, {})) for d in listed]
        with frame(services, "Fleet", actor) as ticker:
            sync = SyncWatch(services.database, actor, states)
            FleetView(services.backbone, actor, entries, ticker, sync, status=status, query=q)
            sync.start()


class FleetView:
    """The fleet table; devices heard of after the page opened are added as they appear."""

    def __init__(
        self,
        backbone: Backbone,
        actor: Actor,
        entries: list[FleetEntry],
        ticker: Ticker,
        sync: SyncWatch,
        *,
        status: str = "all",
        query: str = "",
    ) -> None:
        self.backbone = backbone
        self.sync = sync
        self.show_values = actor.can("telemetry:read")
        self.entries = {entry.device_id: entry for entry in entries}
        self.rows: dict[str, FleetRow] = {}  # the rows on screen
        self._building: dict[str, FleetRow] = {}
        self._ordered_at = time.monotonic()
        self._transitions = backbone.presence.transitions
        state = backbone.presence.state
        columns: list[Column[FleetEntry]] = [
            Column("device", "Device", self._device_cell, lambda e: e.device_id),
            Column(
                "status", "Status", lambda e: self._row(e).status_cell(),
                lambda e: status_rank(state(e.device_id)),
            ),
            Column(
                "seen", "Last seen", lambda e: self._row(e).seen_cell(),
                lambda e: backbone.last_seen.at(e.device_id, e.last_seen_at),
            ),
            Column(
                "backlog", "Backlog", lambda e: self._row(e).backlog_cell(),
                lambda e: _outbox(backbone, e.device_id), "text-right",
            ),
        ]  # fmt: skip
        if self.show_values:
            columns += [
                Column("latest", "Latest values", lambda e: self._row(e).latest_cell()),
                Column("trend", "Trend", lambda e: self._row(e).trend_cell()),
            ]
        columns.append(Column("sync", "Sync", lambda e: sync.line(e.device_id, full=False)))
        self.table = DataTable(
            columns,
            key=lambda e: e.device_id,
            search=lambda e: f"{e.device_id} {e.name}",
            marker="fleet-table",
            row_marker=lambda e: f"fleet {e.device_id}",
            noun="devices",
            empty="No devices registered yet.",
            sort="device",
            query=query,
            after_page=self._page_shown,
        )
        with self.table.tools:
            choice = fleet_filter.chosen(status)
            self.status = ui.toggle(fleet_filter.CHOICES, value=choice)
            self.status.props('dense no-caps data-part="status"').mark("fleet-status")
            self.status.on_value_change(self._filter)
        self.table.keep = self._keep
        self.table.set_rows(entries)
        ticker.add(self.update)

    @view_only
    def _filter(self) -> None:
        self.table.show(first_page=True)

    def _keep(self, entry: FleetEntry) -> bool:
        synced = self.sync.states.get(entry.device_id)
        conflicts = 0 if synced is None else synced.conflicts
        return fleet_filter.keeps(
            self.status.value, self.backbone, entry.device_id, sync_conflicts=conflicts
        )

    def _row(self, entry: FleetEntry) -> FleetRow:
        return self._building[entry.device_id]

    def _device_cell(self, entry: FleetEntry) -> None:
        row = FleetRow(self.backbone, entry, show_values=self.show_values)
        self._building[entry.device_id] = row
        row.device_cell()

    def _page_shown(self, shown: list[FleetEntry]) -> None:
        self.rows, self._building = self._building, {}
        keep = set(self.rows)
        for device_id in [d for d in self.sync.lines if d not in keep]:
            del self.sync.lines[device_id]  # lines of rows no longer on screen
        for row in self.rows.values():
            row.update(self.sync.zone)

    def update(self) -> None:
        """Refresh the rows on screen; now and then, which rows those are."""
        presence = self.backbone.presence
        moved = presence.transitions != self._transitions
        if moved:
            self._transitions = presence.transitions
            heard = [s.device_id for s in presence.states() if s.device_id not in self.entries]
            for device_id in heard:
                self.entries[device_id] = FleetEntry(device_id, "", None)
            if heard:
                self.table.set_rows(list(self.entries.values()))
        now = time.monotonic()
        if moved or now - self._ordered_at >= REORDER_S:
            self._ordered_at = now
            self.table.show()
        for row in self.rows.values():
            row.update(self.sync.zone)


def _outbox(backbone: Backbone, device_id: str) -> int | None:
    state = backbone.presence.state(device_id)
    return None if state is None else state.outbox
