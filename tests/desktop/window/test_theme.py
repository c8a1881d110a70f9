"""The window's light and dark themes: which one shows, that it is applied, and that it reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import combinations
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from core.mqtt.link import LinkEvent, LinkState
from desktop.agent.agent import Agent, AgentEvent
from desktop.agent.sources import Simulated
from desktop.window.appearance import ThemeFollower
from desktop.window.options import WindowOptions
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView
from desktop.window.theme import (
    DARK,
    LIGHT,
    ON_FILL,
    THEME_ENV,
    Scheme,
    Theme,
    Tone,
    contrast,
)
from tests.desktop.window.conftest import screenshot

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
SHOT_NAMES = {"light": "station-window.png", "dark": "station-window-dark.png"}


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_every_colour_reads_on_its_background(theme: Theme) -> None:
    for tone in Tone:
        for background in (theme.window, theme.surface):
            assert contrast(theme.tone_text[tone], background) >= 4.5, tone  # WCAG AA text
        assert contrast(ON_FILL, theme.tone_fill[tone]) >= 4.5, tone  # a badge's word
    for colour in (theme.text, theme.muted):
        assert contrast(colour, theme.surface) >= 4.5
    assert contrast(theme.chart_foreground, theme.chart_background) >= 4.5
    assert contrast(theme.on_accent, theme.accent) >= 4.5
    for colour in theme.series:  # WCAG's 3:1 for lines and shapes
        assert contrast(colour, theme.chart_background) >= 3, colour


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=["light", "dark"])
def test_series_colours_are_told_apart(theme: Theme) -> None:
    """Neighbouring channels never share a hue: every two series differ by 25° or more."""
    hues = [QColor(colour).hsvHue() for colour in theme.series]
    for a, b in combinations(hues, 2):
        assert min(abs(a - b), 360 - abs(a - b)) >= 25, (a, b)


def test_the_theme_is_the_systems_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THEME_ENV, raising=False)
    assert WindowOptions().scheme is Scheme.SYSTEM
    monkeypatch.setenv(THEME_ENV, " Dark ")
    assert WindowOptions().scheme is Scheme.DARK
    monkeypatch.setenv(THEME_ENV, "purple")
    with pytest.raises(ValueError, match="PP_WINDOW_THEME must be one of system, light, dark"):
        WindowOptions()


@pytest.fixture
def hints_reset(qapp: QApplication) -> Iterator[None]:
    """Forget a forced scheme afterwards: the next test sees the system's again."""
    yield
    qapp.styleHints().unsetColorScheme()


@pytest.mark.usefixtures("hints_reset")
def test_the_window_follows_the_system_as_it_switches(qapp: QApplication, qtbot: QtBot) -> None:
    themes = ThemeFollower(qapp, Scheme.SYSTEM)
    view = StationView(themes.theme)
    qtbot.addWidget(view)
    themes.changed.connect(view.apply_theme)
    curve = view.add_curve("temp", "°C")
    view.operator_bar.show()
    view.operator_bar.say("Replaying the outbox…", busy=True)
    view.show()
    qtbot.waitExposed(view)
    try:
        assert wears(view.operator_bar.message, LIGHT.tone_text[Tone.BUSY])
        with qtbot.waitSignal(themes.changed, timeout=1000):
            qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # as the desktop does
        assert qapp.palette().color(QPalette.ColorRole.Window).name() == DARK.window
        assert view.chart.backgroundBrush().color().name() == DARK.chart_background
        assert view.plots[0].titleLabel.opts["color"] == DARK.chart_foreground
        assert curve.opts["pen"].color().name() == DARK.series[0]
        # A state said before the switch is repainted in the new theme's colour for it.
        assert wears(view.operator_bar.message, DARK.tone_text[Tone.BUSY])
        assert not wears(view.operator_bar.message, LIGHT.tone_text[Tone.BUSY])

        qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert qapp.palette().color(QPalette.ColorRole.Window).name() == LIGHT.window
        assert view.chart.backgroundBrush().color().name() == LIGHT.chart_background
    finally:
        themes.stop()


@pytest.mark.usefixtures("hints_reset")
def test_a_forced_theme_stays_when_the_system_switches(qapp: QApplication) -> None:
    themes = ThemeFollower(qapp, Scheme.DARK)
    try:
        qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert themes.theme is DARK
        assert qapp.palette().color(QPalette.ColorRole.Window).name() == DARK.window
    finally:
        themes.stop()


def fill(agent: Agent, controller: StationController) -> None:
    """Two minutes of history, back from an outage and replaying it, as a person would see."""
    state, sim = agent.state, Simulated(seed=3)
    state.last_seq = 3000  # 1,800 samples since seq 1,200 to replay
    start = int(time.time() * 1000) - 121_000  # ending now, as the badge's "since" does
    for n in range(1, 121):
        rpm = 1200 + (n % 17) * 5
        state.values = {**sim.read(), "spindle_rpm": rpm, "load": Decimal(n % 9) / 10}
        state.last_seq, state.last_ts = state.last_seq + 1, start + n * 1000
        controller.refresh()
    state.link = LinkEvent(LinkState.CONNECTED, datetime.now(UTC))
    state.acked_seq, state.depth = 1200, state.last_seq - 1200
    state.replay_total, state.replay_sent = 1800, 1000
    controller.log(AgentEvent(state.last_ts / 1000, "link", "connected; 1800 to replay"))
    controller.refresh()


def painted(view: StationView, label: QLabel) -> str:
    """A badge's fill as the window paints it: the colour just inside its top edge, in its
    middle, and on its left beside the word (its padding); "" when these differ or when its
    corner is not rounded off."""
    image, at = view.grab().toImage(), label.mapTo(view, QPoint(0, 0))

    def pixel(x: int, y: int) -> QColor:
        return image.pixelColor(at.x() + x, at.y() + y)

    fill, beside, corner = pixel(label.width() // 2, 2), pixel(4, label.height() // 2), pixel(0, 0)
    return fill.name() if beside == fill != corner else ""


def wears(label: QLabel, colour: str) -> bool:
    """Whether ``label``'s text is painted in ``colour`` (some pixel within a small distance:
    the glyphs' edges are blended, their cores are not)."""
    image, want = label.grab().toImage(), QColor(colour)
    for x in range(image.width()):
        for y in range(image.height()):
            got = image.pixelColor(x, y)
            distance = abs(got.red() - want.red()) + abs(got.green() - want.green())
            if distance + abs(got.blue() - want.blue()) <= 24:
                return True
    return False


@pytest.mark.parametrize("scheme", [Scheme.LIGHT, Scheme.DARK], ids=["light", "dark"])
@pytest.mark.usefixtures("hints_reset")
async def test_the_window_in_each_theme(
    scheme: Scheme, agent: Agent, qapp: QApplication, qtbot: QtBot, tmp_path: Path
) -> None:
    themes = ThemeFollower(qapp, scheme)
    theme = themes.theme
    view = StationView(theme)
    qtbot.addWidget(view)
    controller = StationController(agent, view)
    try:
        fill(agent, controller)
        view.operator_bar.show()
        view.operator_bar.show_person("Olga Nowak", "olga", ("Operator",))
        view.operator_bar.say("Interval 0.5 s sent: waiting for the server.", busy=True)
        view.show()
        qtbot.waitExposed(view)
        qtbot.wait(100)  # let the layouts and the chart's scroll area settle

        window = qapp.palette().color(QPalette.ColorRole.Window)
        assert window.name() == theme.window
        assert (window.lightness() < 60) is (scheme is Scheme.DARK)
        assert view.grab().toImage().pixelColor(2, 2).name() == theme.window  # as painted
        assert view.chart.grab().toImage().pixelColor(3, 3).name() == theme.chart_background
        curve = view.plots[0].listDataItems()[0]
        assert curve.opts["pen"].color().name() == theme.series[0]
        # States in words and in colour: the link, the outbox's sync, a command under way.
        assert view.badge.text() == "connected"
        assert painted(view, view.badge) == theme.tone_fill[Tone.OK]
        assert view.sync.text() == "catching up"
        assert painted(view, view.sync) == theme.tone_fill[Tone.BUSY]
        assert view.replay.text() == "1000 of 1800 sent"
        message = view.operator_bar.message
        assert message.text().endswith("waiting for the server.")
        assert wears(message, theme.tone_text[Tone.BUSY])
        for label in (view.badge, view.since, view.sync, message):  # nothing cut off
            needed = label.fontMetrics().horizontalAdvance(label.text())
            assert label.contentsRect().width() >= needed, label.objectName()

        screenshot(view, tmp_path, f"theme-{theme.name}.png")
        ARTIFACTS.mkdir(exist_ok=True)
        assert view.grab().save(str(ARTIFACTS / SHOT_NAMES[theme.name]))
    finally:
        controller.close()
        themes.stop()
