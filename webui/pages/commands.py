"""/commands: every device's commands, narrowed by device, kind, state and time, live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from nicegui import ui

from core.protocol import commands as protocol
from core.services import devices
from webui.components import command_words as words
from webui.components.command_list import CommandList, Filters, reading
from webui.forms import submit
from webui.layout import frame, guard
from webui.services import Services

ANY = ""  # the filters' "any" choice (a select's value cannot be None and show a label)
CUSTOM = "custom"
RANGES = {
    ANY: ("Any time", None),
    "hour": ("Last hour", timedelta(hours=1)),
    "day": ("Last 24 hours", timedelta(days=1)),
    "week": ("Last 7 days", timedelta(days=7)),
    CUSTOM: ("From … to …", None),
}
TIME_FORMAT = "%Y-%m-%d %H:%M"


def register(services: Services) -> None:
    """Register /commands."""

    @ui.page("/commands")
    async def commands_page() -> None:
        actor = await guard(services, "devices:read")
        if actor is None:
            return
        async with services.database.session() as session:
            known = await devices.list_devices(session, actor=actor)
        choices = {ANY: "Any device"} | {
            d.id: f"{d.id} · {d.name}" if d.name else d.id for d in known
        }
        with frame(services, "Commands", actor):
            CommandsView(services, choices).build(CommandList(services.database, actor, Filters()))


def zone_name(zone: tzinfo) -> str:
    """``Europe/Berlin``; ``UTC`` for UTC."""
    return str(getattr(zone, "key", None) or "UTC")


def parse_time(text: str, zone: tzinfo, field: str) -> datetime | None:
    """A time typed as YYYY-MM-DD HH:MM in ``zone`` (None when empty); ValueError if not."""
    if not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        msg = f"{field}: write the time as YYYY-MM-DD HH:MM ({zone_name(zone)})"
        raise ValueError(msg) from None


class CommandsView:
    """The filters above the list; each change reads the list again, as whoever acts."""

    def __init__(self, services: Services, devices: dict[str, str]) -> None:
        self.database = services.database
        self.devices = devices

    def build(self, listing: CommandList) -> None:
        """Lay the filters out above ``listing``."""
        self.list = listing
        with ui.row().classes("items-start gap-4"):
            self.device = ui.select(self.devices, value=ANY, label="Device", with_input=True)
            self.device.classes("min-w-48").mark("filter-device")
            kinds = {ANY: "Any kind"} | {k: words.kind_label(k) for k in protocol.KINDS}
            self.kind = ui.select(kinds, value=ANY, label="Kind").classes("min-w-40")
            self.kind.mark("filter-kind")
            states = {ANY: "Any state"} | {s: words.state_of(s).label for s in protocol.STATES}
            self.state = ui.select(states, value=ANY, label="State").classes("min-w-40")
            self.state.mark("filter-state")
            ranges = {key: label for key, (label, _) in RANGES.items()}
            self.range = ui.select(ranges, value=ANY, label="Created").classes("min-w-40")
            self.range.mark("filter-range")
            for select in (self.device, self.kind, self.state, self.range):
                select.on_value_change(self.apply)
        with ui.row().classes("items-start gap-4") as custom_range:
            self.since = ui.input("From", placeholder="YYYY-MM-DD HH:MM").mark("filter-since")
            self.until = ui.input("To", placeholder="YYYY-MM-DD HH:MM").mark("filter-until")
            for custom in (self.since, self.until):
                custom.on("keydown.enter", self.apply)
                custom.on("blur", self.apply)
            self.zone_hint = ui.label().classes("self-center text-sm text-slate-600")
            self.zone_hint.mark("filter-zone")
        custom_range.bind_visibility_from(self.range, "value", lambda v: v == CUSTOM)
        listing.zone_changed = self._zone_changed
        self._zone_changed(listing.zone)
        listing.build()

    def _zone_changed(self, zone: tzinfo) -> None:
        self.zone_hint.text = f"Times are read in {zone_name(zone)}."

    def filters(self) -> Filters:
        """The filters as chosen; ValueError (naming the field) for a time not understood."""
        since = until = None
        key = str(self.range.value)
        span = RANGES.get(key, ("", None))[1]
        if span is not None:  # from when it is chosen; the list then follows what comes after
            since = datetime.now(UTC) - span
        elif key == CUSTOM:
            zone = self.list.zone
            since = parse_time(str(self.since.value or ""), zone, "From")
            until = parse_time(str(self.until.value or ""), zone, "To")
            if since is not None and until is not None and since >= until:
                msg = "To: must be later than From"
                raise ValueError(msg)
        return Filters(
            device_id=self.device.value or None,
            kind=self.kind.value or None,
            state=self.state.value or None,
            since=since,
            until=until,
        )

    async def apply(self) -> None:
        """Show the first page of what the filters now choose."""
        self.since.error = self.until.error = None
        try:
            filters = self.filters()
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            (self.since if field == "From" else self.until).error = message
            return
        page = await submit(self.database, "devices:read", reading(filters))
        if page is not None:
            self.list.show(page)
