"""A station behind a dead network path notices within twice its keepalive and reconnects.

The path dies silently (the chaos proxy's blackhole: no FIN, no RST, nothing answered), as
behind a NAT that dropped its state. Only the MQTT keepalive can tell; the library's default
(30 s) would take a minute. The station's keepalive is made short here so the test is quick:
what is tested is that the station uses its own, not the library's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bench.chaos.proxy import FaultProxy
from core.mqtt.endpoint import Endpoint
from core.mqtt.link import LinkState
from desktop.agent import link as station_link
from desktop.agent.config import AgentConfig
from desktop.agent.state import AgentState, EventLog
from tests.mqtt.broker import DEVICES, RunningBroker, eventually

DEVICE = "press-07"
KEEPALIVE_S = 2  # the station's keepalive for this test (MQTT keepalives are whole seconds)


async def test_a_blackholed_station_reconnects_within_twice_its_keepalive(
    mosquitto: RunningBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(station_link, "KEEPALIVE_S", KEEPALIVE_S)
    proxy = FaultProxy("127.0.0.1", mosquitto.port)
    port = await proxy.start()
    endpoint = Endpoint("127.0.0.1", port, username=DEVICE, password=DEVICES[DEVICE])
    config = AgentConfig(DEVICE, endpoint, data_dir=tmp_path)
    state = AgentState(DEVICE)
    link = station_link.Link(config, stream="s1", state=state, events=EventLog(state))
    supervisor = link.supervisor
    await supervisor.start()
    try:
        await eventually(lambda: supervisor.connected)
        await asyncio.sleep(0.2)  # the connection settles: birth sent, subscriptions made
        proxy.blackhole(True)
        cut_at = time.monotonic()
        await eventually(lambda: not supervisor.connected, within=4 * KEEPALIVE_S)
        noticed_s = time.monotonic() - cut_at
        assert supervisor.event.state is LinkState.RECONNECTING
        # Twice the keepalive (a ping after silence, as long again for its answer), plus the
        # library's once-a-second check.
        assert noticed_s <= 2 * KEEPALIVE_S + 1.5, noticed_s
        proxy.clear()  # a new connection works again; the dead one stays dead
        await eventually(lambda: supervisor.connected, within=10.0)
    finally:
        await supervisor.stop()
        await proxy.stop()
