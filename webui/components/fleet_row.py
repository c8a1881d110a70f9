"""One device on the fleet table: its cells, filled from memory (presence, hub, alarms) live.

A row exists only while it is on screen. Its update reads dicts in memory and sends the
browser nothing when no source moved, so the fleet page ticks in time with its page size,
not with the fleet's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from nicegui import ui

from webui.backbone.presence import DeviceState
from webui.backbone.server import Backbone
from webui.components import sparkline
from webui.components.alarms import AlarmCount
from webui.components.browser_time import named
from webui.components.conflict_chip import ConflictChip
from webui.components.presence_badge import PresenceBadge
from webui.components.values import show_value

LATEST_SHOWN = 4  # channels shown per row; the device page has them all
# The order "Status" sorts in: what needs a look first when sorted the other way round.
_RANK = {"online": 0, "stale": 1, "offline": 2, None: 3}


@dataclass(frozen=True)
class FleetEntry:
    """What the fleet knows of a device from the database, read once per page."""

    device_id: str
    name: str
    last_seen_at: datetime | None
    units: dict[str, str] = field(default_factory=dict)


def status_of(state: DeviceState | None) -> str:
    """The filter a state falls under: online, stale, or offline (never heard counts too)."""
    if state is not None and state.status in ("online", "stale"):
        return state.status
    return "offline"


def status_rank(state: DeviceState | None) -> int:
    """Where a state sorts under "Status"."""
    return _RANK.get(None if state is None else state.status, 2)


def latest_words(backbone: Backbone, entry: FleetEntry) -> str:
    """The device's latest values with their units: ``temp 21.50 °C · door On``."""
    readings = list(backbone.hub.latest(entry.device_id).items())[:LATEST_SHOWN]
    # No-break spaces inside each reading: a narrow cell wraps between readings, never
    # between a channel and its value or a value and its unit.
    return " · ".join(
        f"{name} {show_value(reading.value, entry.units.get(name, ''))}".replace(" ", "\u00a0")
        for name, reading in readings
    )


class FleetRow:
    """The cells of one device; ``update`` re-reads presence, last seen, alarms and the hub."""

    def __init__(self, backbone: Backbone, entry: FleetEntry, *, show_values: bool) -> None:
        self.backbone = backbone
        self.entry = entry
        self.show_values = show_values
        self._read: tuple[object, ...] | None = None
        self._shown: tuple[str, str, str, str] | None = None

    def device_cell(self) -> None:
        """Its id, linked to its page, with its name under it when that says more."""
        entry = self.entry
        ui.link(entry.device_id, f"/devices/{entry.device_id}").classes("font-mono")
        if entry.name and entry.name != entry.device_id:
            ui.label(entry.name).classes("text-sm text-slate-600")

    def status_cell(self) -> None:
        """Presence, active alarms and an identity conflict, side by side."""
        device_id = self.entry.device_id
        with ui.row().classes("items-center gap-1"):
            self.badge = PresenceBadge(f"status {device_id}")
            self.alarms = AlarmCount(f"alarms {device_id}")
            self.conflict = ConflictChip(f"conflict {device_id}")

    def seen_cell(self) -> None:
        """When it was last heard."""
        self.seen = ui.label().classes("whitespace-nowrap").mark(f"seen {self.entry.device_id}")

    def backlog_cell(self) -> None:
        """How many samples wait in its outbox."""
        self.backlog = ui.label().classes("whitespace-nowrap")
        self.backlog.mark(f"backlog {self.entry.device_id}")

    def latest_cell(self) -> None:
        """Its latest values, with units."""
        self.latest = ui.label().classes("text-sm max-w-[22rem]")
        self.latest.mark(f"latest {self.entry.device_id}")

    def trend_cell(self) -> None:
        """A sparkline of its first numeric channel."""
        self.trend = ui.html(sparkline.svg("", "no samples yet"), sanitize=False)
        self.trend.mark(f"trend {self.entry.device_id}")

    def update(self, zone: tzinfo) -> None:
        """Show what the server knows now (nothing to do when no source moved)."""
        backbone, device_id = self.backbone, self.entry.device_id
        self.alarms.show(backbone.alarms.count(device_id))
        state = backbone.presence.state(device_id)
        conflict = backbone.identity.conflict(device_id)
        seen = backbone.last_seen.at(device_id, self.entry.last_seen_at)
        read = (state, conflict, seen, backbone.hub.cursor(device_id), zone)
        if self._read is not None and read[0] is self._read[0] and read[1:] == self._read[1:]:
            return  # states are replaced on change, so identity says "unchanged"
        self._read = read
        self.badge.show(state)
        self.conflict.show(conflict)
        backlog = "—" if state is None or state.outbox is None else f"{state.outbox:,} queued"
        latest, trend = "", ""
        if self.show_values:
            latest = latest_words(backbone, self.entry)
            trend = self._trend()
        shown = (named(seen, zone), backlog, latest, trend)
        if shown == self._shown:
            return
        previous, self._shown = self._shown, shown
        self.seen.text, self.backlog.text, self.latest.text = shown[:3]
        if previous is None or previous[3] != trend:
            self.trend.content = trend or sparkline.svg("", "no samples yet")

    def _trend(self) -> str:
        hub, device_id = self.backbone.hub, self.entry.device_id
        channel = next(
            (name for name, r in hub.latest(device_id).items() if sparkline.numeric(r.value)), None
        )
        if channel is None:
            return ""
        recent = hub.since(device_id, max(0, hub.cursor(device_id) - sparkline.TREND_SAMPLES))
        line = sparkline.points(recent, channel)
        unit = self.entry.units.get(channel, "")
        title = f"{channel}{f' ({unit})' if unit else ''}, the latest {len(recent)} samples"
        return sparkline.svg(line, title) if line else ""
