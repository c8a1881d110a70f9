"""The window's plain parts: the badge's words, the chart's window, the values table's rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pytestqt.qtbot import QtBot

from core.mqtt.link import LinkEvent, LinkState
from desktop.window.link_badge import WORDS, badge_for
from desktop.window.series import Series
from desktop.window.theme import Tone
from desktop.window.values_model import ValueRow, ValuesModel, value_rows


@pytest.mark.parametrize(
    ("state", "text", "tone"),
    [
        (LinkState.CONNECTED, "connected", Tone.OK),
        (LinkState.STARTING, "connecting", Tone.WARN),
        (LinkState.RECONNECTING, "reconnecting", Tone.WARN),
        (LinkState.CONFLICT, "credentials in use elsewhere", Tone.BAD),
        (LinkState.AUTH_FAILED, "offline", Tone.BAD),
        (LinkState.STOPPED, "offline", Tone.BAD),
    ],
)
def test_badge_words_and_tones(state: LinkState, text: str, tone: Tone) -> None:
    at = datetime(2025, 11, 26, 14, 5, 9, tzinfo=UTC)
    badge = badge_for(LinkEvent(state, at))
    assert (badge.text, badge.tone) == (text, tone)
    assert badge.since == f"since {at.astimezone():%H:%M:%S %Z}"


def test_only_connected_is_green() -> None:
    """Every state has its words, and none but CONNECTED may look or read like it."""
    assert set(WORDS) == set(LinkState)
    at = datetime.now(UTC)
    for state in LinkState:
        badge = badge_for(LinkEvent(state, at))
        looks_connected = badge.tone is Tone.OK or "connected" in badge.text.split()
        assert looks_connected == (state is LinkState.CONNECTED), state


@pytest.fixture
def vienna(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is Vienna's for the test."""
    monkeypatch.setenv("TZ", "Europe/Vienna")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("vienna")
def test_a_conflict_says_since_when_in_local_time_with_the_zone() -> None:
    at = datetime(2025, 11, 26, 23, 41, 7, tzinfo=UTC)
    badge = badge_for(LinkEvent(LinkState.CONFLICT, at))
    assert (badge.text, badge.since) == ("credentials in use elsewhere", "since 00:41:07 CET")
    assert badge.detail == "another station uses this device's credentials"


def test_a_station_not_started_is_offline() -> None:
    assert badge_for(None).text == "offline"
    assert badge_for(None).since == ""


def test_the_chart_keeps_a_sliding_window_of_numeric_channels() -> None:
    series = Series(window=3)
    assert series.add(1000, {"parts": 1, "temp": Decimal("21.50"), "door": True}) == [
        "parts",
        "temp",
    ]
    for n in range(2, 6):
        assert series.add(n * 1000, {"parts": n, "temp": Decimal("21.50")}) == []
    assert series.points("parts") == ([3.0, 4.0, 5.0], [3.0, 4.0, 5.0])
    assert series.points("door") == ([], [])
    assert series.channels == ["parts", "temp"]


def test_rows_keep_the_decimal_scale_and_sort_by_channel() -> None:
    assert value_rows({"z": False, "temp": Decimal("41.3750"), "parts": 7}) == [
        ValueRow("parts", "7", "integer"),
        ValueRow("temp", "41.3750", "decimal"),
        ValueRow("z", "false", "boolean"),
    ]


def test_same_channels_repaint_in_place_and_new_ones_reset(qtbot: QtBot) -> None:
    model = ValuesModel()
    model.set_values({"parts": 1})
    with qtbot.waitSignal(model.dataChanged, timeout=100):
        model.set_values({"parts": 2})
    with qtbot.waitSignal(model.modelReset, timeout=100):
        model.set_values({"parts": 3, "temp": Decimal("20.5")})
    assert [row.text for row in model.rows] == ["3", "20.5"]
