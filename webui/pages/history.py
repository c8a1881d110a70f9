"""/devices/{id}/history: a channel over a chosen range, downsampled by the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services.actor import Actor
from core.services.telemetry import history
from webui.components.live_chart import REPLAYED_COLOR
from webui.forms import allowed, submit
from webui.layout import frame, guard
from webui.pages.device import found_device
from webui.services import Services

BUCKETS = 500  # about one per pixel column of the chart: more rows would draw nothing more
RANGES = {
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Custom (UTC)": None,
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
        with frame(services, f"History of {device.id}", actor):
            HistoryView(
                services.database, actor, device.id, [info.channel for info in known]
            ).build()


def parse_time(text: str, field: str) -> datetime:
    """A UTC time typed as YYYY-MM-DD HH:MM; ValueError with what is expected."""
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        msg = f"{field}: write the time as YYYY-MM-DD HH:MM (UTC)"
        raise ValueError(msg) from None


class HistoryView:
    """Range and channel pickers, the downsampled chart, and the CSV export."""

    def __init__(
        self, database: Database, actor: Actor, device_id: str, channels: list[str]
    ) -> None:
        self.database = database
        self.actor = actor
        self.device_id = device_id
        self.channels = channels

    def build(self) -> None:
        """Lay out the controls and an empty chart."""
        ui.link(f"Back to {self.device_id}", f"/devices/{self.device_id}")
        if not self.channels:
            ui.label("This device has stored no samples yet.").mark("no-history")
            return
        now = datetime.now(UTC)
        with ui.row().classes("items-end gap-4"):
            self.channel = ui.select(self.channels, value=self.channels[0], label="Channel")
            self.channel.mark("history-channel")
            self.range = ui.select(list(RANGES), value="Last hour", label="Range")
            self.range.mark("history-range")
            self.start = ui.input("From (UTC)", value=f"{now - timedelta(hours=1):{TIME_FORMAT}}")
            self.end = ui.input("To (UTC)", value=f"{now:{TIME_FORMAT}}")
            self.start.mark("history-start")
            self.end.mark("history-end")
            for custom in (self.start, self.end):
                custom.bind_visibility_from(self.range, "value", lambda v: RANGES.get(v) is None)
            ui.button("Show", icon="query_stats", on_click=self.show).mark("history-show")
            if self.actor.can("reports:read"):
                ui.button("Export CSV", icon="download", on_click=self.export).mark(
                    "history-export"
                )
        self.summary = ui.label().mark("history-summary")
        self.chart = ui.echart(_options([], "")).classes("w-full h-96").mark("history-chart")

    def _range(self) -> tuple[datetime, datetime]:
        span = RANGES.get(str(self.range.value))
        if span is not None:
            end = datetime.now(UTC)
            return end - span, end
        return parse_time(str(self.start.value), "From"), parse_time(str(self.end.value), "To")

    async def show(self) -> None:
        """Load the downsampled range and draw it."""
        try:
            start, end = self._range()
        except ValueError as error:
            ui.notify(str(error), type="warning")
            return
        channel = str(self.channel.value)

        async def work(session: AsyncSession, actor: Actor) -> list[history.Bucket]:
            return await history.downsample(
                session,
                actor=actor,
                device_id=self.device_id,
                channel=channel,
                start=start,
                end=end,
                buckets=BUCKETS,
            )

        buckets = await submit(self.database, "telemetry:read", work)
        if buckets is None:
            return
        samples = sum(bucket.count for bucket in buckets)
        self.summary.text = (
            f"{channel}: {samples} samples in {len(buckets)} buckets, "
            f"{start:{TIME_FORMAT}} to {end:{TIME_FORMAT}} UTC"
        )
        self.chart.options.clear()
        self.chart.options.update(_options(buckets, channel))
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
        query = urlencode(
            {"start": start.isoformat(), "end": end.isoformat(), "channel": self.channel.value}
        )
        ui.download.from_url(f"/devices/{self.device_id}/export.csv?{query}")


def _options(buckets: list[history.Bucket], channel: str) -> dict[str, object]:
    """Min and max as a band, the mean as a line, replayed buckets as amber dots."""
    at = [int(bucket.start.timestamp() * 1000) for bucket in buckets]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 60, "right": 16, "top": 36, "bottom": 28},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True, "name": channel},
        "series": [
            _line("min", at, [b.min for b in buckets], "#94a3b8"),
            _line("max", at, [b.max for b in buckets], "#94a3b8"),
            _line("mean", at, [b.mean for b in buckets], "#2563eb"),
            {
                "name": "replayed",
                "type": "scatter",
                "symbolSize": 5,
                "itemStyle": {"color": REPLAYED_COLOR},
                "data": [[t, b.mean] for t, b in zip(at, buckets, strict=True) if b.replayed],
            },
        ],
    }


def _line(name: str, at: list[int], values: list[float], color: str) -> dict[str, object]:
    return {
        "name": name,
        "type": "line",
        "showSymbol": False,
        "lineStyle": {"color": color, "width": 1 if name != "mean" else 2},
        "itemStyle": {"color": color},
        "data": [list(point) for point in zip(at, values, strict=True)],
    }
