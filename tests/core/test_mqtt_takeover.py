"""Two processes with one client id yield instead of fighting; a broker restart is no conflict."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from core.mqtt.endpoint import Endpoint
from core.mqtt.link import Backoff, LinkEvent, LinkState, NotConnectedError, Options, Outgoing
from core.mqtt.routing import Route
from core.mqtt.supervisor import Supervisor, _reason
from core.mqtt.takeover import TAKEN_OVER, Rivalry, Takeover
from core.protocol import topics
from core.protocol.drops import Drop
from core.tasks import cancel_and_wait
from tests.mqtt.broker import SERVER, RunningBroker, eventually

# Waits short enough for a test to watch a conflict end (the defaults wait up to a minute).
QUICK = Takeover(short=2.0, evidence=2, window=10.0, initial=0.5, cap=1.0, settle=2.5)
COMPETE_S = 12.0  # the twins compete past the first yield (7.5-10 s); unyielding, ~80 connects
ONE_WAY_S = 0.1  # a slow link's delay each way: a connect's four round trips outlast a retry


def _twin(broker: RunningBroker, policy: Takeover) -> Supervisor:
    endpoint = Endpoint("127.0.0.1", broker.port, username=SERVER[0], password=SERVER[1])
    return Supervisor(endpoint, Options(client_id="twin", takeover=policy))


@contextlib.asynccontextmanager
async def _slow_link(broker: RunningBroker) -> AsyncIterator[int]:
    """A loopback port that forwards to ``broker`` with ONE_WAY_S of delay each way."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await asyncio.sleep(ONE_WAY_S)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection("127.0.0.1", broker.port)
        task = asyncio.current_task()
        assert task is not None
        links.add(task)
        try:
            await asyncio.gather(pump(reader, upstream[1]), pump(upstream[0], writer))
        finally:
            links.discard(task)

    links: set[asyncio.Task[Any]] = set()
    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        if links:  # they end once both ends are closed; cancelled, asyncio logs an error
            await asyncio.wait(set(links), timeout=5 * ONE_WAY_S)
        await cancel_and_wait(set(links))


def _ignore(topic: topics.ParsedTopic, payload: bytes) -> Drop | bytes:
    return payload


async def _nothing(payload: bytes) -> None:
    pass


def _record(supervisor: Supervisor) -> list[LinkEvent]:
    events: list[LinkEvent] = []
    supervisor.add_listener(events.append)
    return events


# -- the policy and the judgement, on a clock of our own -------------------------------------


def test_waits_double_up_to_the_cap_with_a_little_jitter() -> None:
    policy, rng = Takeover(), random.Random(1)
    bounds = [10, 20, 40, 60, 60, 60]
    delays = [policy.delay(n, rng) for n in range(len(bounds))]
    assert all(b * 0.75 <= d <= b for d, b in zip(delays, bounds, strict=True))
    assert len({round(policy.delay(9, rng), 6) for _ in range(20)}) == 20  # not in lockstep


@pytest.mark.parametrize(
    "bad",
    [
        {"initial": 0},
        {"evidence": 0},
        {"initial": 70.0},  # above the cap
        {"settle": 60.0},  # a rival still backing off could come back after the reset
    ],
)
def test_a_policy_that_cannot_work_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="takeover"):
        Takeover(**bad)  # type: ignore[arg-type]


def _taken(rivalry: Rivalry, at: float, lasted: float = 0.2) -> float | None:
    """A session opened at once after the broker closed the last one, closed ``lasted`` later."""
    rivalry.opened(at, first_attempt=True)
    return rivalry.closed(at + lasted, by_broker=True)


def test_quick_sessions_the_broker_closes_make_a_conflict_that_grows_then_resets() -> None:
    rivalry = Rivalry(Takeover(), random.Random(2))
    rivalry.opened(0.0, first_attempt=True)  # the first session: nothing closed before it
    assert rivalry.closed(100.0, by_broker=True) is None  # a long one, taken or not
    assert _taken(rivalry, 100.3) is None and rivalry.takeovers == 1  # once may be chance
    first = _taken(rivalry, 100.6)
    assert first is not None and 7.5 <= first <= 10 and rivalry.since is not None
    since = rivalry.since
    for n, bound in enumerate([20, 40, 60, 60]):  # each one outside the window of the last
        wait = _taken(rivalry, 120.0 + n * 70)
        assert wait is not None and bound * 0.75 <= wait <= bound
    assert rivalry.since == since and rivalry.takeovers == 6  # one conflict all along

    rivalry.opened(500.0, first_attempt=True)
    assert rivalry.closed(600.0, by_broker=True) is None  # lasted past `settle`: it is over
    assert rivalry.since is None
    assert _taken(rivalry, 600.2) is None  # a new conflict needs its evidence again
    wait = _taken(rivalry, 600.5)
    assert wait is not None and wait <= 10  # and starts from the first wait


def test_a_broker_that_refused_the_first_retry_is_no_rival() -> None:
    rivalry = Rivalry(Takeover())
    rivalry.opened(0.0, first_attempt=True)
    for n in range(10):  # closed within a second each time, but down when we came back
        assert rivalry.closed(n + 0.5, by_broker=True) is None
        rivalry.opened(n + 1.0, first_attempt=False)
    assert rivalry.takeovers == 0 and rivalry.since is None


def test_our_own_timeouts_are_no_rival() -> None:
    rivalry = Rivalry(Takeover())
    rivalry.opened(0.0, first_attempt=True)
    for n in range(10):  # keepalive or operation timeouts: we closed it, at once or not
        assert rivalry.closed(n + 0.5, by_broker=False) is None
        rivalry.opened(n + 0.7, first_attempt=True)
    assert rivalry.takeovers == 0


def test_takeovers_further_apart_than_the_window_are_chance() -> None:
    rivalry = Rivalry(Takeover())
    rivalry.opened(0.0, first_attempt=True)
    rivalry.closed(1.0, by_broker=True)
    assert [_taken(rivalry, 10.0 + n * 31) for n in range(5)] == [None] * 5
    assert rivalry.takeovers == 5


def test_a_broker_that_says_taken_over_needs_no_pattern() -> None:
    rivalry = Rivalry(Takeover())
    rivalry.opened(0.0, first_attempt=True)
    wait = rivalry.closed(3600.0, by_broker=True, taken_over=True)
    assert wait is not None and 7.5 <= wait <= 10 and rivalry.since is not None


def test_the_reason_of_a_drop_is_read_from_the_error_or_its_cause() -> None:
    taken = aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, identifier=TAKEN_OVER))
    try:
        raise aiomqtt.MqttError("Disconnected during message iteration") from taken
    except aiomqtt.MqttError as error:
        assert _reason(error) == TAKEN_OVER
    assert _reason(aiomqtt.MqttError("Operation timed out")) is None  # ours, not the broker's
    assert _reason(ConnectionResetError()) == 0x80


# -- against a real Mosquitto ---------------------------------------------------------------


async def test_twins_with_one_client_id_yield_instead_of_fighting(
    mosquitto: RunningBroker,
) -> None:
    """The defaults: one of the two yields, ever longer; connects stay a handful, not ~130."""
    first, second = _twin(mosquitto, Takeover()), _twin(mosquitto, Takeover())
    events = {first: _record(first), second: _record(second)}
    try:
        await first.start()
        async with asyncio.timeout(5):
            await first.wait_connected()
        await second.start()
        await asyncio.sleep(COMPETE_S)

        connects = first.connects + second.connects
        assert connects <= 12, f"{connects} connects in {COMPETE_S:g} s: still fighting"
        conflicts = [e for side in events.values() for e in side if e.state is LinkState.CONFLICT]
        assert conflicts, "neither twin noticed the other"
        assert "credentials in use elsewhere since" in conflicts[0].detail
        assert "retrying in" in conflicts[0].detail
        assert len({e.since for e in conflicts}) <= 2  # one conflict (per twin), one start

        # The one that yields is told so and cannot publish; the other one holds the link.
        loser = first if any(e.state is LinkState.CONFLICT for e in events[first]) else second
        winner = second if loser is first else first
        await eventually(lambda: loser.event.state is LinkState.CONFLICT)
        assert not loser.connected
        with pytest.raises(NotConnectedError):
            await loser.publish(topics.SERVER_STATUS, b"{}")
        await loser.stop()
        await eventually(lambda: winner.connected, within=Takeover().cap + 5)
        settled = winner.connects
        await asyncio.sleep(3.0)  # past the rival's quick reconnect: nobody takes it over
        assert winner.connected and winner.connects == settled
    finally:
        await first.stop()
        await second.stop()


async def test_the_yielding_twin_takes_over_once_the_other_has_gone(
    mosquitto: RunningBroker,
) -> None:
    first, second = _twin(mosquitto, QUICK), _twin(mosquitto, QUICK)
    try:
        await first.start()
        async with asyncio.timeout(5):
            await first.wait_connected()
        await second.start()
        await eventually(
            lambda: LinkState.CONFLICT in (first.event.state, second.event.state), within=10
        )
        loser, winner = (
            (first, second)
            if first.event.state is LinkState.CONFLICT
            else (
                second,
                first,
            )
        )
        await winner.stop()
        async with asyncio.timeout(QUICK.cap + 5):
            await loser.wait_connected()
        took_over, connects = loser.takeovers, loser.connects
        await asyncio.sleep(QUICK.settle + 0.5)
        assert loser.connected and (loser.takeovers, loser.connects) == (took_over, connects)
    finally:
        await first.stop()
        await second.stop()


async def test_a_rival_taking_over_while_we_subscribe_is_seen_at_once(
    mosquitto: RunningBroker,
) -> None:
    """Over a slow link the session is taken while we subscribe: no 10 s publish timeout."""
    async with _slow_link(mosquitto) as port:
        twins = []
        for _ in range(2):
            endpoint = Endpoint("127.0.0.1", port, username=SERVER[0], password=SERVER[1])
            birth = Outgoing(topics.SERVER_STATUS, b"{}", qos=1, retain=True)
            twin = Supervisor(endpoint, Options(client_id="twin", birth=birth))
            for kind in (topics.ALL_STATUS, topics.ALL_HEARTBEAT, topics.ALL_CMD_RESULT):
                await twin.route(Route(kind, 1, _ignore, _nothing))
            twins.append(twin)
        first, second = twins
        try:
            await first.start()
            async with asyncio.timeout(5):
                await first.wait_connected()
            await second.start()
            await eventually(  # well before the 10 s a subscribe would wait for its SUBACK
                lambda: LinkState.CONFLICT in (first.event.state, second.event.state), within=6
            )
        finally:
            await first.stop()
            await second.stop()


async def test_a_restarting_broker_is_no_conflict(mosquitto: RunningBroker) -> None:
    """Restarts right after each reconnect: short sessions the broker closes, yet no rival."""
    supervisor = Supervisor(
        Endpoint("127.0.0.1", mosquitto.port, username=SERVER[0], password=SERVER[1]),
        Options(client_id="restarted", backoff=Backoff(initial=0.05, cap=0.5)),
    )
    events = _record(supervisor)
    await supervisor.start()
    try:
        for restart in range(4):
            async with asyncio.timeout(10):
                await supervisor.wait_connected()
            if restart % 2:
                await mosquitto.stop()  # SIGTERM: a clean shutdown
            else:
                await mosquitto.kill()  # SIGKILL: a crash
            await eventually(lambda: not supervisor.connected)
            await asyncio.sleep(0.3)  # down for a moment, as a restart is: the retry is refused
            await mosquitto.start()
        async with asyncio.timeout(10):
            await supervisor.wait_connected()
    finally:
        await supervisor.stop()
    assert supervisor.connects == 5 and supervisor.takeovers == 0
    assert LinkState.CONFLICT not in {event.state for event in events}
