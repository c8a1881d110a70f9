"""Alarms as people see them: a count on the fleet page, the list on a device page, live.

Both read the backbone's active alarms from memory on the page's tick; the device page's
list of cleared alarms is read from the database when the device's alarms change. Times
read in the browser's time zone (``browser_time``), asked once the page has connected.
"""

from __future__ import annotations

import logging

from nicegui import Client, background_tasks, context, ui

from core.db.models import Alarm
from core.services import alarms
from core.services.actor import Actor
from webui.backbone.thresholds import ActiveAlarm
from webui.components.browser_time import ask_zone, known_zone, named
from webui.components.values import show_value
from webui.services import Services

log = logging.getLogger(__name__)
_BEYOND = {"low": "below its low of", "high": "above its high of"}


def counted(count: int) -> str:
    """The fleet indicator's text ("" when no alarm is active)."""
    if count == 0:
        return ""
    return "1 alarm" if count == 1 else f"{count} alarms"


class AlarmCount:
    """A red badge with a device's active alarm count, hidden while there is none."""

    def __init__(self, marker: str) -> None:
        self.badge = ui.badge(color="negative").mark(marker)
        self.badge.set_visibility(False)
        self._shown = 0

    def show(self, count: int) -> None:
        """Show ``count`` (sends nothing to the browser when unchanged)."""
        if count != self._shown:
            self._shown = count
            self.badge.text = counted(count)
            self.badge.set_visibility(count > 0)


def describe(alarm: ActiveAlarm | Alarm, unit: str) -> str:
    """What was crossed, e.g. ``temp above its high of 80 °C: 85.5 °C``."""
    beyond = _BEYOND.get(alarm.bound, alarm.bound)
    threshold, value = show_value(alarm.threshold, unit), show_value(alarm.value, unit)
    return f"{alarm.channel} {beyond} {threshold}: {value}"


class AlarmsCard:
    """A device's active alarms and its recently cleared ones; hidden while it has none."""

    def __init__(self, services: Services, actor: Actor, device_id: str, units: dict[str, str]):
        self.alarms = services.backbone.alarms
        self.database = services.database
        self.actor = actor
        self.device_id = device_id
        self.units = units
        self.zone = known_zone()
        self._zones = 0  # zones learnt: a new one redraws the times
        self._asked = False
        self.allowed = actor.can("devices:read")  # the page shows nothing of alarms otherwise
        self._read = -1  # the revision the cleared list was read at
        self._loads = 0  # cleared lists read so far
        self._drawn: tuple[int, int, int] | None = None
        self._loading = False
        self._cleared: list[Alarm] = []
        self.card = ui.card().classes("w-full").mark("alarms")
        self.card.set_visibility(False)
        with self.card:
            ui.label("Alarms").classes("font-semibold")
            self.active = ui.column().classes("gap-1").mark("alarms-active")
            self.cleared = ui.column().classes("gap-0 text-slate-600").mark("alarms-cleared")

    def update(self) -> None:
        """Redraw when the device's alarms changed or the browser's zone became known."""
        if not self.allowed:
            return
        client = context.client
        if not self._asked and client.has_socket_connection:  # asking earlier sends half a page
            self._asked = True
            background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")
        revision = self.alarms.revision(self.device_id)
        if revision != self._read and not self._loading:
            self._loading = True
            background_tasks.create(self._reload(revision), name="reload cleared alarms")
        drawn = (revision, self._zones, self._loads)
        if drawn != self._drawn:
            self._drawn = drawn
            self._show()

    async def _learn_zone(self, client: Client) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone:
            self.zone = zone
            self._zones += 1

    async def _reload(self, revision: int) -> None:
        try:
            async with self.database.session() as session:
                self._cleared = await alarms.recent(
                    session, actor=self.actor, device_id=self.device_id
                )
            self._read = revision  # a change during the read is read again on the next tick
            self._loads += 1
        except Exception:
            log.exception("cleared alarms of %s not read", self.device_id)
        finally:
            self._loading = False

    def _show(self) -> None:
        active = self.alarms.active(self.device_id)
        self.card.set_visibility(bool(active or self._cleared))
        self.active.clear()
        with self.active:
            if not active:
                ui.label("No active alarms.").mark("no-alarms")
            for alarm in active:
                unit = self.units.get(alarm.channel, "")
                with ui.row().classes("items-center gap-2"):
                    ui.icon("warning", color="negative")
                    text = f"{describe(alarm, unit)} · since {named(alarm.raised_at, self.zone)}"
                    ui.label(text).mark(f"alarm {alarm.channel} {alarm.bound}")
        self.cleared.clear()
        with self.cleared:
            if self._cleared:
                ui.label("Recently cleared").classes("text-sm font-semibold mt-2")
            for past in self._cleared:
                ui.label(self._cleared_text(past)).classes("text-sm").mark(
                    f"cleared {past.channel} {past.bound}"
                )

    def _cleared_text(self, alarm: Alarm) -> str:
        unit = self.units.get(alarm.channel, "")
        assert alarm.cleared_at is not None  # recent() lists cleared alarms only
        span = f"{named(alarm.raised_at, self.zone)} to {named(alarm.cleared_at, self.zone)}"
        how = (
            "threshold removed"
            if alarm.clear_value is None
            else f"back at {show_value(alarm.clear_value, unit)}"
        )
        return f"{describe(alarm, unit)} · {span} · {how}"
