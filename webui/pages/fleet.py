"""/fleet: every device with its presence, last seen, backlog, sync and latest values, live."""

from __future__ import annotations

from nicegui import ui

from core.db.models import Device
from core.services import devices, sync_peers
from core.services.actor import Actor
from webui.backbone.server import Backbone
from webui.components.alarms import AlarmCount
from webui.components.conflict_chip import ConflictChip
from webui.components.presence_badge import PresenceBadge
from webui.components.sync_state import SyncWatch
from webui.components.ticker import Ticker
from webui.components.values import show_value, when
from webui.layout import frame, guard
from webui.services import Services

LATEST_SHOWN = 4  # channels shown per row; the device page has them all
HEADINGS = ["Device", "Name", "Status", "Alarms", "Last seen", "Backlog", "Latest"]
# One grid template for the heading and every row, so the columns line up. A row's sync
# state is a line of its own under it: a column would push Latest off a laptop's screen.
GRID = "w-full grid grid-cols-[8rem_10rem_7rem_6rem_5rem_6rem_1fr] gap-x-4 gap-y-1 items-center"


def register(services: Services) -> None:
    """Register /fleet."""

    @ui.page("/fleet")
    async def fleet_page() -> None:
        actor = await guard(services, "devices:read")
        if actor is None:
            return
        async with services.database.session() as session:
            listed = await devices.list_devices(session, actor=actor)
            states = await sync_peers.states(session, actor=actor)
        with frame(services, "Fleet", actor) as ticker:
            sync = SyncWatch(services.database, actor, states)
            FleetView(services.backbone, actor, listed, ticker, sync)
            sync.start()


class FleetRow:
    """One device's line; each tick re-reads presence, identity, last seen and the hub (memory)."""

    def __init__(
        self, backbone: Backbone, device: Device, sync: SyncWatch, *, show_values: bool
    ) -> None:
        self.backbone = backbone
        self.device_id = device.id
        self.last_seen_at = device.last_seen_at
        self.show_values = show_values
        self._shown: tuple[str, str, str] | None = None
        # (presence state, identity conflict, last seen, hub cursor) shown
        self._read: tuple[object, object, object, int] | None = None
        with ui.element("div").classes(f"{GRID} border-b py-1").mark(f"fleet {device.id}"):
            ui.link(device.id, f"/devices/{device.id}").classes("font-mono truncate")
            ui.label(device.name).classes("truncate")
            with ui.element("div"):
                self.badge = PresenceBadge(f"status {device.id}")
            with ui.element("div"):
                self.alarms = AlarmCount(f"alarms {device.id}")
            self.seen = ui.label().mark(f"seen {device.id}")
            self.backlog = ui.label().mark(f"backlog {device.id}")
            self.values = ui.label().classes("font-mono text-sm").mark(f"latest {device.id}")
            with ui.element("div").classes("col-start-2 col-end-[-1]"):  # under the name
                sync.line(device.id, full=False)
            self.conflict = ConflictChip(f"conflict {device.id}")
            self.conflict.chip.classes("col-span-full justify-self-start")  # a line of its own

    def update(self) -> None:
        """Show what the server knows now (nothing to do when no source moved)."""
        backbone = self.backbone
        self.alarms.show(backbone.alarms.count(self.device_id))
        state = backbone.presence.state(self.device_id)
        conflict = backbone.identity.conflict(self.device_id)
        seen = backbone.last_seen.at(self.device_id, self.last_seen_at)
        read = (state, conflict, seen, backbone.hub.cursor(self.device_id))
        if self._read is not None and read[0] is self._read[0] and read[1:] == self._read[1:]:
            return  # states are replaced on change, so identity says "unchanged"
        self._read = read
        self.badge.show(state)
        self.conflict.show(conflict)
        backlog = "—" if state is None or state.outbox is None else f"{state.outbox} queued"
        latest = ""
        if self.show_values:
            readings = list(backbone.hub.latest(self.device_id).items())[:LATEST_SHOWN]
            latest = "  ".join(f"{name}={show_value(r.value)}" for name, r in readings)
        shown = (when(seen), backlog, latest)
        if shown != self._shown:
            self._shown = shown
            self.seen.text, self.backlog.text, self.values.text = shown


class FleetView:
    """The fleet list; devices heard of after the page opened are added as they appear."""

    def __init__(
        self,
        backbone: Backbone,
        actor: Actor,
        listed: list[Device],
        ticker: Ticker,
        sync: SyncWatch,
    ) -> None:
        self.backbone = backbone
        self.sync = sync
        self.show_values = actor.can("telemetry:read")
        with ui.element("div").classes(f"{GRID} text-sm text-slate-500"):
            for heading in HEADINGS:
                ui.label(heading)
        self.table = ui.column().classes("w-full gap-0")
        self.rows: dict[str, FleetRow] = {}
        with self.table:
            self.empty = ui.label("No devices registered yet.").mark("fleet-empty")
            self.empty.set_visibility(not listed)
        for device in listed:
            self._add(device)
        ticker.add(self.update)

    def _add(self, device: Device) -> None:
        with self.table:
            self.rows[device.id] = FleetRow(
                self.backbone, device, self.sync, show_values=self.show_values
            )
        self.empty.set_visibility(False)

    def update(self) -> None:
        """Add newly heard devices, then refresh every row."""
        for state in self.backbone.presence.states():
            if state.device_id not in self.rows:
                self._add(Device(id=state.device_id, name="", last_seen_at=None))
        for row in self.rows.values():
            row.update()
