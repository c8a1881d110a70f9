"""The overview's "Needs attention" card: active alarms, then devices with a backlog or a
conflict, each linked to its device (and a station's sync conflicts to their log).

Redrawn only when what it lists changes. Alarm values carry their channel's unit, read
once per device in the background the first time the device has an alarm to show.
"""

from __future__ import annotations

import logging
from datetime import tzinfo

from nicegui import background_tasks, ui

from core.db.engine import Database
from core.services import device_configs, sync_conflicts
from core.services.actor import Actor
from webui.backbone.fleet_summary import Attention
from webui.backbone.thresholds import ActiveAlarm
from webui.components.alarms import describe
from webui.components.browser_time import named
from webui.components.overview_numbers import fleet_link, plural
from webui.components.overview_watch import Glance
from webui.components.sync_state import conflicts_of

log = logging.getLogger(__name__)
SHOWN = 8  # lines of each kind; the fleet, filtered, lists them all


def device_link(device_id: str) -> None:
    """The device's id, linked to its page."""
    ui.link(device_id, f"/devices/{device_id}").classes("font-mono")


class AttentionCard:
    """Active alarms and devices worth a look, or a line saying there are none."""

    def __init__(self, database: Database, actor: Actor, zone: tzinfo) -> None:
        self.database = database
        self.actor = actor
        self.zone = zone
        self.may_read_log = actor.can(sync_conflicts.READ_PERMISSION)
        self.units: dict[str, dict[str, str]] = {}  # device → channel → unit
        self._loading: set[str] = set()
        self._drawn: tuple[object, ...] | None = None
        with ui.card().classes("w-full").mark("attention"):
            ui.label("Needs attention").classes("font-semibold")
            self.body = ui.column().classes("w-full gap-1")

    def show(self, glance: Glance) -> None:
        """Redraw when the alarms, the devices or the units known changed."""
        missing = {a.device_id for a in glance.alarms[:SHOWN]} - self.units.keys()
        for device_id in missing - self._loading:
            self._loading.add(device_id)
            background_tasks.create(self._load_units(device_id), name="read channel units")
        drawn = (glance.alarms, glance.attention, len(self.units))
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.body.clear()
        with self.body:
            if not glance.alarms and not glance.attention:
                ui.label("Nothing needs attention: no active alarms, backlogs or conflicts.").mark(
                    "attention-empty"
                )
                return
            self._alarms(glance.alarms)
            self._devices(glance.attention)

    def _alarms(self, alarms: tuple[ActiveAlarm, ...]) -> None:
        for alarm in alarms[:SHOWN]:
            unit = self.units.get(alarm.device_id, {}).get(alarm.channel, "")
            since = named(alarm.raised_at, self.zone)
            with ui.row().classes("items-center gap-2"):
                ui.icon("warning", color="negative")
                device_link(alarm.device_id)
                text = f"{describe(alarm, unit)} · since {since}"
                ui.label(text).mark(f"attention-alarm {alarm.device_id}")
        self._more(len(alarms), "alarm", "alarm")

    def _devices(self, attention: tuple[Attention, ...]) -> None:
        for device in attention[:SHOWN]:
            marker = f"attention {device.device_id}"
            with ui.row().classes("items-center gap-2"):
                ui.icon("inventory_2" if device.queued else "report", color="warning")
                device_link(device.device_id)
                if device.queued:
                    queued = f"{plural(device.queued, 'sample')} queued on the station"
                    ui.label(queued).mark(marker)
                if device.sharing:
                    sharing = f"identity conflict: {device.sharing} stations use its credentials"
                    ui.label(sharing).mark(marker)
                if device.sync_conflicts:
                    text = plural(device.sync_conflicts, "sync conflict")
                    if self.may_read_log:
                        ui.link(text, conflicts_of(device.device_id)).mark(marker)
                    else:
                        ui.label(text).mark(marker)
        self._more(len(attention), "device", "backlog")

    def _more(self, count: int, what: str, status: str) -> None:
        if count > SHOWN:
            ui.link(f"and {plural(count - SHOWN, what)} more", fleet_link(status)).classes(
                "text-sm"
            )

    async def _load_units(self, device_id: str) -> None:
        try:
            async with self.database.session() as session:
                units = await device_configs.channel_units(
                    session, actor=self.actor, device_id=device_id
                )
        except Exception:  # its alarms read without units until the page is opened again
            log.warning("units of %s not read", device_id, exc_info=True)
            units = {}
        finally:
            self._loading.discard(device_id)
        self.units[device_id] = units
