"""A live echart of some channels: points are appended in the browser, never resent whole.

Its time axis reads in the page's zone (``browser_time.known_zone``), the one every other time
on the page is written in: the browser formats the ticks in that zone, by name, and the axis
is titled with the zone's abbreviation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, tzinfo
from pathlib import Path

import orjson
from nicegui import ui

from core.protocol.telemetry import Value
from webui.backbone.hub import LivePoint
from webui.components import chart_words
from webui.components.browser_time import known_zone, zone_abbreviation, zone_key

WINDOW_MS = 10 * 60 * 1000  # the sliding window: ten minutes of live data
SCRIPT = (Path(__file__).parent / "live.js").read_text()
REPLAYED_COLOR = "#f59e0b"  # amber: replayed points must not be mistaken for live ones

Update = list[list[list[float]]]  # per series, the new [ts_ms, value] points


def plot_value(value: Value) -> float:
    """What a chart draws for a value: booleans as 0/1, decimals as floats."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value)  # int or Decimal: exact values are in the current-values table


def time_axis(zone: tzinfo) -> dict[str, object]:
    """An echart time axis whose ticks and pointer read in ``zone``, which titles it."""
    key = orjson.dumps(zone_key(zone)).decode()
    return {
        "type": "time",
        "name": zone_abbreviation(zone),
        "nameGap": 6,
        "minInterval": 1000,  # ticks no finer than the labels, which end at the second
        "nameTextStyle": {"color": "#64748b", "align": "left"},
        # ':' marks a JavaScript function for NiceGUI; ppLive comes with live.js.
        "axisLabel": {":formatter": f"(value) => ppLive.tick(value, {key})", "hideOverlap": True},
        "axisPointer": {"label": {":formatter": f"(p) => ppLive.clock(p.value, {key})"}},
    }


def install_script() -> None:
    """Give this page the browser side of live charts and the link badge."""
    ui.add_head_html(f"<script>{SCRIPT}</script>")


class LiveChart:
    """Channels of one group: a line per channel for live data, amber dots for replayed."""

    def __init__(
        self,
        title: str,
        channels: list[str],
        *,
        step: bool = False,
        zone: tzinfo | None = None,  # the page's zone (known_zone) unless given
    ) -> None:
        zone = known_zone() if zone is None else zone
        self.channels = channels
        self.appended = 0  # points sent to the browser since the chart was drawn
        series: list[dict[str, object]] = []
        for channel in channels:
            series.append(
                {
                    "name": channel,
                    "type": "line",
                    "showSymbol": False,
                    "step": False,
                    "data": [],
                    **(chart_words.state_series() if step else {}),  # booleans: On/Off bands
                }
            )
            series.append(
                {
                    "name": f"{channel} (replayed)",
                    "type": "scatter",
                    "symbolSize": 5,
                    "itemStyle": {"color": REPLAYED_COLOR},
                    "data": [],
                }
            )
        self.chart = ui.echart(
            {
                "title": {"text": title, "textStyle": {"fontSize": 13}},
                "animation": False,
                "useUTC": zone is UTC,  # the tooltip's own times: UTC, else the browser's
                "tooltip": chart_words.state_tooltip() if step else {"trigger": "axis"},
                "legend": chart_words.legend(top=0, right=0),  # "replayed" explained on hover
                "grid": {"left": 50, "right": 40, "top": 36, "bottom": 28},  # right: zone
                "xAxis": time_axis(zone),
                "yAxis": chart_words.state_axis() if step else {"type": "value", "scale": True},
                "series": series,
            }
        ).classes("w-full h-56")

    def seed(self, points: Iterable[LivePoint]) -> None:
        """Draw what the hub already holds, as part of the page's first render."""
        for index, new in enumerate(self._split(points)):
            data = self.chart.options["series"][index]["data"]
            data.extend(new)

    def take(self, points: Iterable[LivePoint]) -> Update | None:
        """The new points of this chart's series, or None if none concern it."""
        update = self._split(points)
        count = sum(len(new) for new in update)
        if count == 0:
            return None
        self.appended += count
        return update

    def _split(self, points: Iterable[LivePoint]) -> Update:
        update: Update = [[] for _ in range(2 * len(self.channels))]
        for point in points:
            for index, channel in enumerate(self.channels):
                value = point.values.get(channel)
                if value is not None:
                    update[2 * index + point.replayed].append([point.ts_ms, plot_value(value)])
        return update


def send(updates: dict[int, Update]) -> None:
    """Append each chart's new points in the browser: one message for the whole page."""
    if updates:
        payload = {str(chart_id): update for chart_id, update in updates.items()}
        ui.run_javascript(f"ppLive.append({orjson.dumps(payload).decode()}, {WINDOW_MS})")
