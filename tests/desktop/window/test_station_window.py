"""The station window shows what the agent does: link, values, chart, outbox, replay, events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pytestqt.qtbot import QtBot

from core.mqtt.link import LinkEvent, LinkState
from core.protocol.station_config import DesiredConfig
from desktop.agent.agent import Agent, AgentEvent
from desktop.agent.outbox import CapPolicy
from desktop.agent.sources import Simulated
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView
from desktop.window.theme import LIGHT, Tone
from tests.desktop.window.conftest import DEVICE, station_config
from tests.mqtt.broker import eventually

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"


def table(view: StationView) -> dict[str, tuple[str, str]]:
    """The values table as channel → (value text, type), read through the Qt model."""
    model = view.values_model
    cells = {
        model.index(row, 0).data(): (model.index(row, 1).data(), model.index(row, 2).data())
        for row in range(model.rowCount())
    }
    assert model.columnCount() == 3
    return cells


def log_lines(view: StationView) -> list[str]:
    """The event log, newest first."""
    return [view.events.item(row).text() for row in range(view.events.count())]


def curve_points(view: StationView) -> dict[str, int]:
    """Points per channel's plot on the chart."""
    curves = [curve for plot in view.plots for curve in plot.listDataItems()]
    return {curve.name(): len(curve.getData()[0]) for curve in curves}


def test_shows_the_configuration_in_effect(
    agent: Agent, view: StationView, controller: StationController
) -> None:
    assert view.windowTitle() == f"PrecisionPulse station — {DEVICE}"
    assert view.config_device.text() == DEVICE
    assert view.config_broker.text() == str(agent.config.endpoint)
    assert "unused" not in view.config_broker.text()  # the password is never shown
    assert view.config_interval.text() == "0.05 s between samples, a heartbeat every 5 s"
    assert view.config_version.text() == "none received yet: the station's own settings"
    assert view.config_cap.text() == "10,000 rows, then drop oldest"
    assert view.config_outbox.text() == str(agent.config.outbox_path)
    assert view.config_stream.text() == agent.state.stream
    assert view.badge.text() == "offline"  # not started yet
    assert view.replay.text() == "nothing to replay"


async def test_a_configuration_from_the_server_shows_once_applied(
    agent: Agent, view: StationView, controller: StationController
) -> None:
    await agent.configuration.on_desired(
        DesiredConfig(DEVICE, 4, {"interval_s": 2, "heartbeat_s": 10})
    )
    controller.refresh()
    assert view.config_interval.text() == "2 s between samples, a heartbeat every 10 s"
    assert view.config_version.text() == "version 4, signed by the server"
    assert any("configuration v4 applied" in line for line in log_lines(view))


async def test_new_samples_fill_the_table_and_the_chart(
    agent: Agent, view: StationView, controller: StationController
) -> None:
    assert table(view) == {}
    first = await agent.sample_once()
    controller.refresh()

    assert first is not None
    values = agent.state.values
    assert table(view) == {
        "door_open": ("true" if values["door_open"] else "false", "boolean"),
        "parts": (str(values["parts"]), "integer"),
        "temp": (str(values["temp"]), "decimal"),
    }
    assert curve_points(view) == {"parts": 1, "temp": 1}  # booleans stay in the table

    await agent.sample_once()
    await agent.sample_once()
    controller.refresh()
    controller.refresh()  # nothing new: no duplicate point

    assert table(view)["temp"][0] == str(agent.state.values["temp"])
    assert curve_points(view) == {"parts": 2, "temp": 2}
    assert view.last_seq.text() == "3"
    assert view.outbox_depth.text() == "3 rows"  # nothing acknowledged without a server
    assert view.acked_seq.text() == "—"


async def test_badge_follows_the_link(
    agent: Agent, view: StationView, controller: StationController
) -> None:
    now = datetime.now(UTC)
    agent.state.link = LinkEvent(LinkState.CONNECTED, now)
    controller.refresh()
    assert view.badge.text() == "connected"
    assert view.since.text() == f"since {now.astimezone():%H:%M:%S %Z}"

    agent.state.link = LinkEvent(LinkState.RECONNECTING, datetime.now(UTC), "broker went away")
    controller.refresh()
    assert view.badge.text() == "reconnecting"
    assert view.link_detail.text() == "broker went away"

    agent.state.link = LinkEvent(LinkState.AUTH_FAILED, datetime.now(UTC), "bad password")
    controller.refresh()
    assert view.badge.text() == "offline"
    assert view.link_detail.text() == "bad password"


async def test_a_conflict_shows_red_with_since_when_and_nothing_cut_off(
    agent: Agent, view: StationView, controller: StationController, qtbot: QtBot
) -> None:
    since = datetime.now(UTC)
    detail = (
        f"credentials in use elsewhere since {since:%H:%M:%S} UTC: another client as"
        f" pp-station-{DEVICE} took the session over 3 times; retrying in 20 s"
    )
    agent.state.link = LinkEvent(LinkState.CONFLICT, since, detail)
    controller.refresh()
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)

    assert view.badge.text() == "credentials in use elsewhere"
    assert view.since.text() == f"since {since.astimezone():%H:%M:%S %Z}"
    assert view.link_detail.text() == detail
    painted = view.badge.grab().toImage().pixelColor(view.badge.width() // 2, 1)
    assert painted.name() == LIGHT.tone_fill[Tone.BAD] != LIGHT.tone_fill[Tone.OK]
    for label in (view.badge, view.since):  # the whole text fits: nothing is cut off
        needed = label.fontMetrics().horizontalAdvance(label.text())
        assert label.contentsRect().width() >= needed, label.objectName()
    ARTIFACTS.mkdir(exist_ok=True)
    assert view.grab().save(str(ARTIFACTS / "station-window-conflict.png"))


async def test_a_running_agent_without_a_broker_reconnects_and_keeps_sampling(
    agent: Agent, view: StationView, controller: StationController
) -> None:
    await agent.start()
    await eventually(lambda: agent.supervisor.event.state is LinkState.RECONNECTING)
    await eventually(lambda: agent.state.last_seq >= 3)
    controller.refresh()

    assert view.badge.text() == "reconnecting"
    assert any("link lost" in line for line in log_lines(view))
    assert set(table(view)) == {"door_open", "parts", "temp"}
    assert int(view.last_seq.text()) >= 3

    await agent.stop()
    controller.refresh()
    assert view.badge.text() == "offline"


async def test_replay_progress(
    agent: Agent, view: StationView, controller: StationController
) -> None:
    agent.state.replay_total, agent.state.replay_sent = 1500, 500
    controller.refresh()
    assert (view.replay.value(), view.replay.maximum()) == (500, 1500)
    assert view.replay.text() == "500 of 1500 sent"

    agent.state.replay_sent = 2000  # a resend after a stalled ack counts again
    controller.refresh()
    assert view.replay.value() == 1500


async def test_events_appear_in_the_log_until_the_window_closes(
    tmp_path: Path, qtbot: QtBot
) -> None:
    agent = Agent(station_config(tmp_path, max_rows=2), [Simulated(seed=1)])
    agent.state.events.append(AgentEvent(0.0, "link", "an event from before the window"))
    view = StationView()
    qtbot.addWidget(view)
    controller = StationController(agent, view)
    try:
        assert log_lines(view)[0].endswith("an event from before the window")
        for _ in range(3):  # the third goes past the cap of 2: the oldest is dropped
            await agent.sample_once()
        assert "cap" in log_lines(view)[0]
        assert "dropped seqs 1..1" in log_lines(view)[0]
        controller.refresh()
        assert view.dropped.text() == str(agent.state.dropped) == "1"
        shown = view.events.count()

        with qtbot.waitSignal(controller.closed, timeout=1000):
            view.close()
        assert not controller.timer.isActive()
        await agent.sample_once()  # drops again, but the window no longer listens
        assert agent.state.events[-1].kind == "cap"
        assert view.events.count() == shown
    finally:
        await agent.stop()


async def test_refused_samples_are_counted(tmp_path: Path, qtbot: QtBot) -> None:
    agent = Agent(
        station_config(tmp_path, max_rows=1, policy=CapPolicy.REFUSE), [Simulated(seed=1)]
    )
    view = StationView()
    qtbot.addWidget(view)
    controller = StationController(agent, view)
    try:
        await agent.sample_once()
        assert await agent.sample_once() is None
        controller.refresh()
        assert view.refused.text() == "1"
        assert view.config_cap.text() == "1 rows, then refuse"
        assert "refused" in log_lines(view)[0]
    finally:
        controller.close()
        await agent.stop()
