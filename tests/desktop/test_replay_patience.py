"""The replay's patience: a slow server is not fed everything twice, and a lost live message
is still resent, within the cap. Time is scaled down: the floor, the cap and the idle look
are monkeypatched small, the fake server acks a second late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.messages import Ack
from desktop.agent import patience, replay
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.sources import Simulated
from tests.desktop.test_replay_pacing import _Server, server
from tests.mqtt.broker import DEVICES, RunningBroker, eventually

__all__ = ["server"]  # the fixture, shared with the pacing tests

DEVICE = "press-07"
INTERVAL = 0.1  # the station samples ten times a second
FLOOR, CAP = 0.3, 3.0  # RESEND_AFTER and RESEND_CAP, scaled down
LAG = 1.0  # the slow server stores a sample a second after it arrives: over 3 times the floor
ACK_EVERY = 1.0  # and acks what it stored once a second: the watermark stands still 1 s


class _SlowAcker:
    """The server's ingest, slow but steady: every ACK_EVERY, it acks the seqs that arrived
    (in a row from 1) LAG ago or more; seqs in ``lost`` never arrived."""

    def __init__(self, server: _Server, stream: str) -> None:
        self.server, self.stream = server, stream
        self.lost: set[int] = set()
        self.acked = 0
        self._arrived: dict[int, float] = {}  # seq → when it arrived (the loop's clock)
        self._seen = 0  # arrivals already stamped

    def _stamp(self) -> None:
        now = asyncio.get_running_loop().time()
        for origin, seqs in self.server.arrivals[self._seen :]:
            for seq in seqs:
                if origin == "replay" or seq not in self.lost:
                    self._arrived.setdefault(seq, now)
        self._seen = len(self.server.arrivals)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_ack = loop.time() + ACK_EVERY
        while True:
            self._stamp()
            if loop.time() >= next_ack:
                next_ack += ACK_EVERY
                stored = loop.time() - LAG
                seq = self.acked
                while self._arrived.get(seq + 1, stored + 1) <= stored:
                    seq += 1
                if seq > self.acked:
                    self.acked = seq
                    ack = Ack(DEVICE, self.stream, seq).encode()
                    await self.server.client.publish(topics.telemetry_ack(DEVICE), ack, qos=1)
            await asyncio.sleep(0.02)


@pytest.fixture
async def station(
    mosquitto: RunningBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Agent]:
    monkeypatch.setattr(patience, "RESEND_AFTER", FLOOR)
    monkeypatch.setattr(patience, "RESEND_CAP", CAP)
    monkeypatch.setattr(replay, "IDLE_LOOK_S", 0.05)
    endpoint = Endpoint("127.0.0.1", mosquitto.port, username=DEVICE, password=DEVICES[DEVICE])
    agent = Agent(AgentConfig(DEVICE, endpoint, tmp_path, interval_s=INTERVAL), [Simulated()])
    await agent.start()
    yield agent
    await agent.stop()


@pytest.fixture
async def acker(server: _Server, station: Agent) -> AsyncIterator[_SlowAcker]:
    acker = _SlowAcker(server, station.outbox.stream)
    task = asyncio.get_running_loop().create_task(acker.run())
    yield acker
    task.cancel()


def _resends(agent: Agent) -> list[str]:
    return [e.text for e in agent.state.events if e.text.startswith("no ack for")]


async def test_a_server_that_acks_late_but_steadily_gets_no_resend(
    station: Agent, server: _Server, acker: _SlowAcker
) -> None:
    """Before, a watermark still for 5 s (here 0.3 s) meant a loss: every ack gap resent."""
    # Once a few acks have measured the lag (before the first, a station cannot know it).
    await eventually(lambda: acker.acked >= 30, within=15)
    resends, replayed = len(_resends(station)), server.replayed()
    await asyncio.sleep(5 * ACK_EVERY)
    assert acker.acked >= 70, "the server stopped acking"
    assert _resends(station)[resends:] == []
    assert server.replayed() == replayed


async def test_a_lost_live_message_is_still_resent_within_the_cap(
    station: Agent, server: _Server, acker: _SlowAcker
) -> None:
    await eventually(lambda: acker.acked >= 30, within=15)
    lost = station.outbox.next_seq + 2
    acker.lost.add(lost)  # the broker drops it; later ones arrive, unacked behind it
    await eventually(lambda: acker.acked == lost - 1, within=5)
    stalled = asyncio.get_running_loop().time()
    await eventually(lambda: any(lost in seqs for o, seqs in server.arrivals if o == "replay"))
    waited = asyncio.get_running_loop().time() - stalled
    assert waited <= CAP + 1.0  # the cap, an idle look, and a loaded machine's slack
    await eventually(lambda: station.outbox.acked_seq > lost, within=10)
    assert _resends(station), "resent, but not by a stall"


def test_the_patience_follows_the_lag_backs_off_and_stops_at_the_cap() -> None:
    """The production constants: a floor of 5 s, twice the lag, doubled per resend, 60 s."""
    p = patience.Patience()
    assert p.wait() == patience.RESEND_AFTER == 5.0  # no lag measured yet
    for seq in range(1, 11):
        p.sent(seq, now=float(seq))
    p.acked(10, now=13.0)  # seq 1 waited 12 s for its ack
    assert p.lag == 12.0 and p.wait() == 24.0
    p.resent(through=10, now=20.0)
    assert p.wait() == 48.0  # a resend the watermark has not passed: doubled
    p.resent(through=10, now=30.0)
    assert p.wait() == patience.RESEND_CAP == 60.0
    p.acked(10, now=31.0)  # passed what was resent: back to one
    assert p.wait() == 24.0
    resent = patience.Patience()
    resent.sent(1, now=40.0)
    resent.resent(through=1, now=50.0)
    resent.acked(1, now=50.5)
    assert resent.lag == 0.5  # timed from the resend: the patience counts as no lag
