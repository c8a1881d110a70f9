"""/devices/{id}/history: a channel over a chosen range, downsampled by the database."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from urllib.parse import urlencode

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import device_configs
from core.services.actor import Actor
from core.services.telemetry import history
from webui.components import history_chart
from webui.components.browser_time import known_zone, named
from webui.components.history_chart import Drawn
from webui.forms import allowed, submit
from webui.layout import frame, guard
from webui.pages.device import found_device
from webui.services import Services

BUCKETS = 500  # about one per pixel column of the chart: more rows would draw nothing more
OPENS_ON = "Last hour"  # what the page shows before anything is picked
OPENING_SPAN = timedelta(hours=1)
CUSTOM = "Custom"
RANGES = {
    "Last 15 minutes": timedelta(minutes=15),
    OPENS_ON: OPENING_SPAN,
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    CUSTOM: None,
}
TIME_FORMAT = "%Y-%m-%d %H:%M"


def register(services: Services) -> None:
    """Register /devices/{device_id}/history."""

    @ui.page("/devices/{device_id}/history")
    async def history_page(device_id: str) -> None:
        actor = await guard(services, "telemetry:read")
        if actor is None:
            return
        async with services.database.session() as session:
            device = await found_device(services, session, actor, device_id, "History")
            if device is None:
                return
            known = await history.channels(session, actor=actor, device_id=device.id)
            units = {}
            if actor.can("devices:read"):
                units = await device_configs.channel_units(
                    session, actor=actor, device_id=device.id
                )
        with frame(services, f"History of {device.id}", actor):
            view = HistoryView(services.database, actor, device.id, known, units, known_zone())
            await view.build()


def zone_name(zone: tzinfo) -> str:
    """How the custom range's fields name the zone they are typed in (``CET``, ``UTC``)."""
    return datetime.now(zone).tzname() or "UTC"


def parse_time(text: str, field: str, zone: tzinfo) -> datetime:
    """A time typed as YYYY-MM-DD HH:MM in ``zone``; ValueError that says what is expected."""
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        example = f"{datetime.now(zone):{TIME_FORMAT}}"
        msg = f"{field}: write the time as YYYY-MM-DD HH:MM, such as {example}"
        raise ValueError(msg) from None


def first_shown(known: list[history.ChannelInfo]) -> str | None:
    """The channel the page opens on: the first with numbers, else the first there is."""
    numeric = [info.channel for info in known if info.type != "boolean"]
    return next(iter(numeric or [info.channel for info in known]), None)


class HistoryView:
    """Range and channel pickers, the downsampled chart, and the CSV export."""

    def __init__(
        self,
        database: Database,
        actor: Actor,
        device_id: str,
        known: list[history.ChannelInfo],
        units: dict[str, str],
        zone: tzinfo,
    ) -> None:
        self.database = database
        self.actor = actor
        self.device_id = device_id
        self.channels = [info.channel for info in known]
        self.booleans = {info.channel for info in known if info.type == "boolean"}
        self.opens_on = first_shown(known)
        self.units = units
        self.zone = zone

    async def build(self) -> None:
        """Lay out the controls and draw the channel the page opens on over the last hour."""
        ui.link(f"Back to {self.device_id}", f"/devices/{self.device_id}")
        if not self.channels:
            ui.label(
                "This device has stored no samples yet. Its history appears here once it sends."
            ).mark("no-history")
            return
        zone = zone_name(self.zone)
        now = datetime.now(self.zone)
        with ui.row().classes("items-end gap-4"):
            choices = {c: self._title(c) for c in self.channels}
            self.channel = ui.select(
                choices, value=[self.opens_on], label="Channels", multiple=True
            )
            self.channel.props("use-chips").classes("min-w-[16rem]").mark("history-channel")
            self.range = ui.select(list(RANGES), value=OPENS_ON, label="Range")
            self.range.classes("min-w-[11rem]").mark("history-range")
            self.start = ui.input(f"From ({zone})", value=f"{now - OPENING_SPAN:{TIME_FORMAT}}")
            self.end = ui.input(f"To ({zone})", value=f"{now:{TIME_FORMAT}}")
            self.start.classes("min-w-[11rem]").mark("history-start")
            self.end.classes("min-w-[11rem]").mark("history-end")
            for custom in (self.start, self.end):
                custom.bind_visibility_from(self.range, "value", lambda v: RANGES.get(v) is None)
            ui.button("Show", icon="query_stats", on_click=self.show).mark("history-show")
            if self.actor.can("reports:read"):
                ui.button("Export CSV", icon="download", on_click=self.export).mark(
                    "history-export"
                )
        self.summary = ui.label().mark("history-summary")
        self.chart = ui.echart(history_chart.options([], zone=self.zone)).classes("w-full h-96")
        self.chart.mark("history-chart")
        await self.show()

    def _title(self, channel: str) -> str:
        unit = self.units.get(channel, "")
        if channel in self.booleans:
            return f"{channel} (on/off)"
        return f"{channel} ({unit})" if unit else channel

    def _picked(self) -> list[str]:
        value = self.channel.value
        picked = value if isinstance(value, list) else [value] if value else []
        return [str(channel) for channel in picked]

    def _range(self) -> tuple[datetime, datetime]:
        span = RANGES.get(str(self.range.value))
        if span is not None:
            end = datetime.now(self.zone)
            return end - span, end
        start = parse_time(str(self.start.value), "From", self.zone)
        end = parse_time(str(self.end.value), "To", self.zone)
        if start >= end:
            msg = "From must be before To"
            raise ValueError(msg)
        return start, end

    async def show(self) -> None:
        """Load the picked channels over the range, downsampled, and draw them."""
        try:
            start, end = self._range()
        except ValueError as error:
            ui.notify(str(error), type="warning")
            return
        picked = self._picked()
        if not picked:
            self.summary.text = "Pick at least one channel to draw."
            self._draw([], (start, end))
            return

        async def work(session: AsyncSession, actor: Actor) -> list[Drawn]:
            drawn = []
            for channel in picked:
                buckets = await history.downsample(
                    session,
                    actor=actor,
                    device_id=self.device_id,
                    channel=channel,
                    start=start,
                    end=end,
                    buckets=BUCKETS,
                )
                unit = self.units.get(channel, "")
                drawn.append(Drawn(channel, buckets, unit, channel in self.booleans))
            return drawn

        drawn = await submit(self.database, "telemetry:read", work)
        if drawn is None:
            return
        span = f"{named(start, self.zone)} to {named(end, self.zone)}"
        counts = [(d.channel, sum(b.count for b in d.buckets)) for d in drawn]
        if not any(count for _, count in counts):
            names = ", ".join(picked)
            self.summary.text = (
                f"No samples of {names} from {span}. Pick a longer range, or another channel."
            )
        else:
            each = ", ".join(f"{c}: {n:,} sample{'' if n == 1 else 's'}" for c, n in counts)
            self.summary.text = f"{each} · {span}"
        self._draw(drawn, (start, end))

    def _draw(self, drawn: list[Drawn], span: tuple[datetime, datetime]) -> None:
        self.chart.options.clear()
        self.chart.options.update(history_chart.options(drawn, span, self.zone))
        self.chart.update()

    async def export(self) -> None:
        """Download the raw range as CSV (the download's own request is checked again)."""
        if await allowed(self.database, "reports:read") is None:
            return
        try:
            start, end = self._range()
        except ValueError as error:
            ui.notify(str(error), type="warning")
            return
        picked = self._picked()
        query = urlencode(  # the channels drawn, each as its own channel=
            {"start": start.isoformat(), "end": end.isoformat(), "channel": picked}, doseq=True
        )
        ui.download.from_url(f"/devices/{self.device_id}/export.csv?{query}")
