"""The chart tells time on the wall clock in the station's zone, and values in their units."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyqtgraph as pg
import pytest
from pytestqt.qtbot import QtBot

from core.protocol.station_config import DesiredConfig
from desktop.agent.agent import Agent
from desktop.agent.sources import Simulated
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView
from desktop.window.time_axis import tick_texts, zone_label
from tests.desktop.window.conftest import DEVICE, screenshot

CLOCK = re.compile(r"\d\d:\d\d:\d\d(\.\d{1,3})?")


@pytest.fixture
def india() -> Iterator[None]:
    """Local time is India's (UTC+05:30 all year, so the expected times never move)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_ticks_read_as_local_wall_clock_times(india: None) -> None:
    assert tick_texts([0.0, 15.0, 30.0], 1) == ["05:30:00", "05:30:15", "05:30:30"]
    assert tick_texts([3600.0, 7200.0], 60) == ["06:30:00", "07:30:00"]
    # A fast station's sub-second view: tenths or hundredths, never a bare "53.290".
    assert tick_texts([0.5, 1.0, 1.5], 0.001) == ["05:30:00.5", "05:30:01.0", "05:30:01.5"]
    assert tick_texts([0.25, 0.5], 0.001) == ["05:30:00.25", "05:30:00.50"]
    assert tick_texts([0.125], 0.001) == ["05:30:00.125"]
    assert tick_texts([3 * 86400.0], 86400) == ["04 Jan"]  # ticks a day apart: the date
    assert zone_label(0) == "local time (IST)"


def bottom_ticks(plot: pg.PlotItem) -> list[str]:
    """The time axis's tick texts over what the plot shows now, as pyqtgraph draws them."""
    axis = plot.getAxis("bottom")
    low, high = plot.viewRange()[0]
    levels = axis.tickValues(low, high, axis.geometry().width())
    return [text for spacing, values in levels for text in axis.tickStrings(values, 1, spacing)]


def feed(agent: Agent, controller: StationController, samples: int, step_ms: int) -> None:
    """``samples`` samples ``step_ms`` apart, ending now, shown as the timer would."""
    state, sim = agent.state, Simulated(seed=3)
    start = int(time.time() * 1000) - samples * step_ms
    for n in range(samples):
        rpm = 1200 + (n % 17) * 5
        state.values = {**sim.read(), "spindle_rpm": rpm, "load": Decimal(n % 9) / 10}
        state.last_seq, state.last_ts = n + 1, start + n * step_ms
        controller.refresh()


async def test_the_time_axis_shows_local_times_and_names_the_zone_once(
    agent: Agent, view: StationView, controller: StationController, qtbot: QtBot, tmp_path: Path
) -> None:
    feed(agent, controller, 120, 1000)  # two minutes at 1 s
    await agent.configuration.on_desired(
        DesiredConfig(DEVICE, 2, {"units": {"temp": "°C", "spindle_rpm": "rpm"}})
    )
    controller.refresh()  # the units come with a configuration, after the plots
    view.resize(1100, 760)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(100)  # the chart lays out and paints its axes
    screenshot(view, tmp_path, "chart-wall-clock.png")
    screenshot(view.chart, tmp_path, "chart-all-plots.png")  # under the scroll too

    plots = {plot.titleLabel.text: plot for plot in view.plots}
    assert list(plots) == ["load", "parts", "spindle_rpm", "temp"]
    for plot in plots.values():
        ticks = bottom_ticks(plot)
        assert ticks and all(CLOCK.fullmatch(tick) for tick in ticks), ticks
    # The zone is said once, under the top plot (the chart scrolls: the top shows first).
    labelled = [plot.getAxis("bottom").label.isVisible() for plot in plots.values()]
    assert labelled == [True, False, False, False]
    assert plots["load"].getAxis("bottom").labelText == zone_label()
    units = {
        name: plot.getAxis("left").labelText if plot.getAxis("left").label.isVisible() else ""
        for name, plot in plots.items()
    }
    assert units == {"load": "", "parts": "", "temp": "°C", "spindle_rpm": "rpm"}

    # A configuration without units takes them away again.
    await agent.configuration.on_desired(DesiredConfig(DEVICE, 3, {"interval_s": 1}))
    controller.refresh()
    assert not plots["temp"].getAxis("left").label.isVisible()


async def test_a_sub_second_view_still_reads_as_times_of_day(
    agent: Agent, view: StationView, controller: StationController, qtbot: QtBot, tmp_path: Path
) -> None:
    feed(agent, controller, 20, 5)  # a tenth of a second of samples
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(100)
    screenshot(view.chart, tmp_path, "chart-sub-second.png")
    ticks = bottom_ticks(view.plots[0])
    assert ticks and all(CLOCK.fullmatch(tick) for tick in ticks), ticks
    assert any("." in tick for tick in ticks)  # the fraction that tells the ticks apart
