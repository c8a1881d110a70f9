"""/devices/{id}: one device live — presence, sync, current values, charts, connection history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from nicegui import background_tasks, ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Device, OfflineEvent
from core.errors import NotFoundError
from core.services import device_configs, devices, offline_events, sync_peers
from core.services.actor import Actor
from core.services.sync_peers import PeerState
from core.services.telemetry import history, quarantine
from webui.backbone.hub import LivePoint, Reading
from webui.backbone.presence import DeviceState
from webui.components import backfill, config_card, live_chart, quarantine_list
from webui.components.alarms import AlarmsCard
from webui.components.command_panel import device_commands
from webui.components.config_card import ConfigCard
from webui.components.conflict_chip import ConflictChip
from webui.components.live_chart import LiveChart
from webui.components.presence_badge import PresenceBadge
from webui.components.sync_state import SyncWatch
from webui.components.values import show_value, when, when_ms
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /devices/{device_id}."""

    @ui.page("/devices/{device_id}")
    async def device_page(device_id: str) -> None:
        actor = await guard(services, "telemetry:read")
        if actor is None:
            return
        async with services.database.session() as session:
            device = await found_device(services, session, actor, device_id, "Device")
            if device is None:
                return
            units = await device_configs.channel_units(session, actor=actor, device_id=device.id)
            known = await history.channels(session, actor=actor, device_id=device.id)
            stored = await history.recent(
                session,
                actor=actor,
                device_id=device.id,
                since=datetime.now(UTC) - backfill.SPAN,
            )
            events = await offline_events.recent(session, actor=actor, device_id=device.id)
            config, states, held = None, None, 0
            if actor.can(quarantine.PERMISSION):
                held = await quarantine.count(session, actor=actor, device_id=device.id)
            if actor.can("devices:read"):
                config = await config_card.load(session, actor, device.id)
                states = await sync_peers.states(session, actor=actor, device_id=device.id)
        with frame(services, f"Device {device.id}", actor) as ticker:
            ticker.add(AlarmsCard(services, actor, device.id, units).update)  # on top
            view = DeviceView(services, actor, device.id, units, stored_seen=device.last_seen_at)
            sync = _sync_watch(services, actor, device.id, states)
            booleans = {info.channel for info in known if info.type == "boolean"}
            view.build(booleans, events, sync, quarantined=held, stored=stored)
            ticker.add(view.update)
            if config is not None:
                card = ConfigCard(services.database, actor, device.id)
                card.build(config)
                ticker.add(lambda: card.follow(view.reported_version()))
            device_commands(services.database, actor, device.id)
            if sync is not None:
                sync.start()


def _sync_watch(
    services: Services, actor: Actor, device_id: str, states: list[PeerState] | None
) -> SyncWatch | None:
    """The device's sync state, for those who may read it (None: not read)."""
    if states is None:
        return None
    return SyncWatch(services.database, actor, states, device_id=device_id)


async def found_device(
    services: Services, session: AsyncSession, actor: Actor, device_id: str, title: str
) -> Device | None:
    """The device, or None after showing a page that says it does not exist."""
    try:
        return await devices.get_device(session, actor=actor, device_id=device_id)
    except NotFoundError as error:
        with frame(services, title, actor):
            ui.label(str(error)).mark("not-found")
        return None


def presence_text(state: DeviceState | None, seen: datetime | None) -> str:
    """What presence says beyond the badge: since when, last seen, the station's figures."""
    last_seen = "never seen" if seen is None else f"last seen {when(seen)}"
    if state is None:
        return f"no status or heartbeat since the server started · {last_seen}"
    parts = [f"since {when(state.since)}", last_seen]
    if state.outbox is not None:
        parts.append(f"outbox {state.outbox}")
    if state.uptime_s is not None:
        parts.append(f"up {state.uptime_s} s")
    if state.config_version is not None:
        parts.append(f"config v{state.config_version}")
    return " · ".join(parts)


class DeviceView:
    """Presence, values and a chart per channel, refreshed from memory on the page's ticker."""

    def __init__(
        self,
        services: Services,
        actor: Actor,
        device_id: str,
        units: dict[str, str],
        *,
        stored_seen: datetime | None = None,  # the devices table's last_seen_at
    ) -> None:
        self.backbone = services.backbone
        self.stored_seen = stored_seen
        self.database = services.database
        self.actor = actor
        self.device_id = device_id
        self.units = units
        self.charts: dict[str, LiveChart] = {}
        self.values: dict[str, ui.label] = {}
        self.booleans: set[str] = set()
        self.cursor = 0
        self._status: str | None = None
        self._presence = ""

    def build(
        self,
        booleans: set[str],
        events: list[OfflineEvent],
        sync: SyncWatch | None = None,
        *,
        quarantined: int = 0,  # the device's quarantined samples, if the actor may see them
        stored: Sequence[history.StoredSample] = (),  # the last minutes, from the database
    ) -> None:
        """Lay the page out, filled with ``stored`` and what the hub holds now (and ``sync``'s
        state); the hub's samples that ``stored`` already has are drawn once."""
        hub = self.backbone.hub
        self.booleans = set(booleans)
        with ui.row().classes("items-center gap-6"):
            self.badge = PresenceBadge("device-status")
            self.presence = ui.label().mark("device-presence")
            self.conflict = ConflictChip("device-conflict")
            ui.link("History", f"/devices/{self.device_id}/history").mark("history-link")
            if quarantined:
                held = f"{quarantined:,} quarantined sample{'' if quarantined == 1 else 's'}"
                ui.link(held, quarantine_list.link(self.device_id)).mark("quarantine-link")
        if sync is not None:
            sync.line(self.device_id, full=True)
        with ui.card().classes("w-full"):
            ui.label("Current values").classes("font-semibold")
            self.value_grid = ui.grid(columns=3).classes("gap-x-8 gap-y-1")
            with self.value_grid:
                self.no_values = ui.label("No samples yet.").mark("no-values")
        self.chart_area = ui.column().classes("w-full gap-2")
        with ui.card().classes("w-full"):
            ui.label("Connection history").classes("font-semibold")
            self.events = ui.column().classes("gap-0").mark("offline-events")
        self._show_events(events)
        seeded = hub.since(self.device_id, 0)
        self.cursor = seeded[-1].n if seeded else 0
        self._add_charts(backfill.fill(stored, seeded))
        self._show_values(backfill.latest(stored, hub.latest(self.device_id)))
        self._status = self._current_status()

    def update(self) -> None:
        """Append new samples, refresh values and presence; reload events on a transition."""
        backbone = self.backbone
        points = backbone.hub.since(self.device_id, self.cursor)
        if points:
            self.cursor = points[-1].n
            # A chart made now draws these points as part of its first render: appended in
            # the browser, they would reach a chart that is not there yet, and be lost.
            new = self._add_charts(points)
            updates = {}
            for chart in self.charts.values():
                if chart in new:
                    continue
                update = chart.take(points)
                if update is not None:
                    updates[chart.chart.id] = update
            live_chart.send(updates)
            self._show_values(backbone.hub.latest(self.device_id))
        state = backbone.presence.state(self.device_id)
        self.badge.show(state)
        self.conflict.show(backbone.identity.conflict(self.device_id))
        text = presence_text(state, backbone.last_seen.at(self.device_id, self.stored_seen))
        if text != self._presence:
            self._presence = self.presence.text = text
        status = self._current_status()
        if status != self._status:  # a transition: the connection history has a new line
            self._status = status
            background_tasks.create(self._reload_events(), name="reload offline events")

    def reported_version(self) -> int | None:
        """The configuration version the station's heartbeats name, if heard."""
        state = self.backbone.presence.state(self.device_id)
        return None if state is None else state.config_version

    def _current_status(self) -> str | None:
        state = self.backbone.presence.state(self.device_id)
        return None if state is None else state.status

    def _add_charts(self, points: list[LivePoint]) -> list[LiveChart]:
        """Charts for channels that have none yet, each drawing ``points`` from the start."""
        new: list[LiveChart] = []
        for point in points:
            for channel, value in point.values.items():
                if channel in self.charts:
                    continue
                if isinstance(value, bool):
                    self.booleans.add(channel)
                unit = self.units.get(channel, "")
                title = f"{channel} ({unit})" if unit else channel
                with self.chart_area:
                    chart = LiveChart(title, [channel], step=channel in self.booleans)
                self.charts[channel] = chart
                new.append(chart)
        for chart in new:
            chart.seed(points)
        return new

    def _show_values(self, latest: dict[str, Reading]) -> None:
        for channel, reading in latest.items():
            label = self.values.get(channel)
            if label is None:
                self.no_values.set_visibility(False)
                with self.value_grid:
                    ui.label(channel).classes("font-mono")
                    label = self.values[channel] = ui.label().mark(f"value {channel}")
                    label.props(f"data-value={channel}")  # found by browser tests and benches
                    self.values[f"{channel} at"] = ui.label().classes("text-slate-500")
            text = show_value(reading.value, self.units.get(channel, ""))  # On/Off for states
            at = self.values[f"{channel} at"]
            if (label.text, at.text) != (text, when_ms(reading.ts_ms)):
                label.text, at.text = text, when_ms(reading.ts_ms)

    async def _reload_events(self) -> None:
        async with self.database.session() as session:
            events = await offline_events.recent(
                session, actor=self.actor, device_id=self.device_id
            )
        self._show_events(events)

    def _show_events(self, events: list[OfflineEvent]) -> None:
        self.events.clear()
        with self.events:
            if not events:
                ui.label("No offline periods recorded.")
            for event in events:
                end = "still offline" if event.ended_at is None else f"to {when(event.ended_at)}"
                ui.label(f"{when(event.started_at)} {end} · {event.reason}").mark(
                    f"offline-event {event.reason}"
                )
