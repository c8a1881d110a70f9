"""The station's link as its log tells it: connects, losses, and credentials in use elsewhere."""

from __future__ import annotations

from pathlib import Path

from core.mqtt.endpoint import Endpoint
from core.mqtt.link import LinkState
from desktop.agent.agent import Agent, AgentEvent
from desktop.agent.config import AgentConfig
from desktop.agent.sources import Simulated
from tests.mqtt.broker import DEVICES, RunningBroker, eventually

DEVICE = "press-07"
CONFLICT = "credentials in use elsewhere since "  # the link's own detail, said once


def _agent(broker: RunningBroker, data_dir: Path) -> Agent:
    endpoint = Endpoint("127.0.0.1", broker.port, username=DEVICE, password=DEVICES[DEVICE])
    return Agent(AgentConfig(DEVICE, endpoint, data_dir, interval_s=0.05), [Simulated(seed=1)])


async def test_two_stations_behind_one_identity_each_say_the_credentials_are_in_use(
    mosquitto: RunningBroker, tmp_path: Path
) -> None:
    """Two machines with one device's credentials take its session from each other: the
    one thrown off says so in its log, and sends nothing while it yields."""
    one, two = _agent(mosquitto, tmp_path / "one"), _agent(mosquitto, tmp_path / "two")
    shown: list[AgentEvent] = []  # what the windows' logs would show
    for agent in (one, two):
        agent.add_listener(shown.append)
    await one.start()
    await eventually(lambda: one.supervisor.connected)
    await two.start()
    try:
        await eventually(
            lambda: any(a.supervisor.event.state is LinkState.CONFLICT for a in (one, two)),
            within=20,
        )
        yielding = next(a for a in (one, two) if a.supervisor.event.state is LinkState.CONFLICT)
        said = [e for e in yielding.state.events if e.kind == "link" and CONFLICT in e.text]
        assert said and said[-1].text == yielding.supervisor.event.detail
        assert said[-1].text.startswith(CONFLICT) and said[-1].text.count("elsewhere") == 1
        assert said[-1] in shown
        assert not yielding.replay.live(yielding.state.last_seq + 1)
    finally:
        await one.stop()
        await two.stop()
