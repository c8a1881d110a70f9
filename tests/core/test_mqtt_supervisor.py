"""The supervisor against a real Mosquitto: routes, birth/farewell, reconnects, auth, drops."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from broker import config
from broker.certs import make_certificates
from broker.credentials import PasswordFile
from broker.mosquitto_process import configure_mosquitto
from core.mqtt.endpoint import Endpoint
from core.mqtt.link import Backoff, LinkState, NotConnectedError, Options, Outgoing
from core.mqtt.routing import Route, Router, matches
from core.mqtt.supervisor import Supervisor
from core.passwords import mosquitto_hash
from core.protocol import topics
from core.protocol.drops import Drop
from core.protocol.messages import Status
from tests.mqtt.broker import SERVER, RunningBroker, eventually

FAST = Backoff(initial=0.05, cap=0.5)


def _endpoint(broker: RunningBroker, user: tuple[str, str] = SERVER) -> Endpoint:
    return Endpoint("127.0.0.1", broker.port, username=user[0], password=user[1])


def _decode_status(topic: topics.ParsedTopic, payload: bytes) -> Status | Drop:
    assert topic.device_id is not None
    return Status.parse(payload, topic.device_id)


@pytest.fixture
async def supervisor(mosquitto: RunningBroker) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(
        _endpoint(mosquitto),
        Options(
            client_id="test-server",
            birth=Outgoing(topics.SERVER_STATUS, b'{"state":"online"}', qos=1, retain=True),
            farewell=Outgoing(topics.SERVER_STATUS, b'{"state":"offline"}', qos=1, retain=True),
            backoff=FAST,
        ),
    )
    yield supervisor
    await supervisor.stop()


async def _retained(broker: RunningBroker, topic: str) -> bytes:
    """The retained message of ``topic`` as a fresh client sees it."""
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username=SERVER[0], password=SERVER[1]
    ) as c:
        await c.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            async for message in c.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
    raise AssertionError("unreachable")


def test_topic_matching() -> None:
    assert matches("pp/v1/dev/+/telemetry", "pp/v1/dev/a/telemetry")
    assert not matches("pp/v1/dev/+/telemetry", "pp/v1/dev/a/telemetry/replay")
    assert matches("$share/g/pp/v1/dev/+/telemetry", "pp/v1/dev/a/telemetry")
    assert matches("pp/v1/#", "pp/v1/dev/a/status") and not matches("pp/v2/#", "pp/v1/x")


def test_backoff_is_capped_and_jittered() -> None:
    import random

    rng = random.Random(1)
    delays = [Backoff(initial=1, cap=8).delay(n, rng) for n in range(40)]
    assert all(0.5 <= d <= 8 for d in delays) and max(delays) > 4
    assert len({round(d, 6) for d in delays[10:]}) > 20  # jittered, not lockstep


async def test_routes_get_decoded_envelopes_and_drops_are_counted(
    supervisor: Supervisor, mosquitto: RunningBroker
) -> None:
    got: list[Status] = []

    async def handle(status: Status) -> None:
        got.append(status)

    events: list[LinkState] = []
    supervisor.add_listener(lambda event: events.append(event.state))
    await supervisor.route(Route(topics.ALL_STATUS, 1, _decode_status, handle))
    await supervisor.start()
    async with asyncio.timeout(5):
        await supervisor.wait_connected()
    assert events == [LinkState.STARTING, LinkState.CONNECTED]
    await supervisor.publish(topics.status("press-07"), b"not json", qos=1)
    await supervisor.publish(topics.status("press-07"), b'{"v":1}', qos=1)
    await supervisor.publish("pp/v1/dev/press-07/unknown", b"{}", qos=1)
    await supervisor.publish(
        topics.status("press-07"), Status("press-07", "online").encode(), qos=1
    )
    await eventually(lambda: got == [Status("press-07", "online")])
    assert supervisor.router.dropped == {"malformed": 2}
    assert await _retained(mosquitto, topics.SERVER_STATUS) == b'{"state":"online"}'


async def test_a_process_with_over_1024_files_open_still_receives(
    supervisor: Supervisor,
) -> None:
    """select() refuses descriptors past FD_SETSIZE; 150 stations in one process pass it."""
    got: list[Status] = []

    async def handle(status: Status) -> None:
        got.append(status)

    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1_100)]  # the socket comes after
    try:
        await supervisor.route(Route(topics.ALL_STATUS, 1, _decode_status, handle))
        await supervisor.start()
        async with asyncio.timeout(5):
            await supervisor.wait_connected()
        status = Status("press-07", "online")
        await supervisor.publish(topics.status("press-07"), status.encode(), qos=1)
        await eventually(lambda: got == [status])
        assert supervisor.connected
    finally:
        for fd in held:
            os.close(fd)


async def test_reconnects_and_resubscribes_after_the_broker_restarts(
    supervisor: Supervisor, mosquitto: RunningBroker
) -> None:
    got: list[Status] = []

    async def handle(status: Status) -> None:
        got.append(status)

    await supervisor.route(Route(topics.ALL_STATUS, 1, _decode_status, handle))
    await supervisor.start()
    async with asyncio.timeout(5):
        await supervisor.wait_connected()
    await mosquitto.kill()
    await eventually(lambda: supervisor.event.state is LinkState.RECONNECTING)
    with pytest.raises(NotConnectedError):
        await supervisor.publish(topics.SERVER_STATUS, b"{}")
    await mosquitto.start()
    async with asyncio.timeout(10):
        await supervisor.wait_connected()
    assert supervisor.connects == 2
    await supervisor.publish(topics.status("lathe-1"), Status("lathe-1", "online").encode(), qos=1)
    await eventually(lambda: got == [Status("lathe-1", "online")])


async def test_a_clean_stop_publishes_the_farewell(
    supervisor: Supervisor, mosquitto: RunningBroker
) -> None:
    await supervisor.start()
    async with asyncio.timeout(5):
        await supervisor.wait_connected()
    await supervisor.stop()
    assert supervisor.event.state is LinkState.STOPPED
    assert await _retained(mosquitto, topics.SERVER_STATUS) == b'{"state":"offline"}'


async def test_refused_credentials_stop_the_retries(mosquitto: RunningBroker) -> None:
    supervisor = Supervisor(
        _endpoint(mosquitto, (SERVER[0], "wrong-password")),
        Options(client_id="intruder", backoff=FAST),
        Router(),
    )
    await supervisor.start()
    await eventually(lambda: supervisor.event.state is LinkState.AUTH_FAILED)
    assert "refused the credentials" in supervisor.event.detail
    await asyncio.sleep(0.5)  # several backoff periods: no further attempt
    assert supervisor.event.state is LinkState.AUTH_FAILED and supervisor.connects == 0
    await supervisor.stop()


async def test_the_publish_window_bounds_messages_in_flight(
    mosquitto: RunningBroker,
) -> None:
    supervisor = Supervisor(
        _endpoint(mosquitto), Options(client_id="windowed", inflight_window=3, backoff=FAST)
    )
    await supervisor.start()
    async with asyncio.timeout(5):
        await supervisor.wait_connected()
    peak = 0
    original = supervisor._window.acquire

    async def watched() -> bool:
        nonlocal peak
        result = await original()
        peak = max(peak, 3 - supervisor._window._value)
        return result

    supervisor._window.acquire = watched  # type: ignore[method-assign]
    await asyncio.gather(
        *(supervisor.publish(topics.SERVER_STATUS, b"x", qos=1) for _ in range(50))
    )
    assert peak == 3
    await supervisor.stop()


def test_endpoint_urls() -> None:
    plain = Endpoint.from_url("mqtt://dev%40x:s3cret@broker.local")
    assert (plain.host, plain.port, plain.username, plain.password, plain.tls) == (
        "broker.local",
        1883,
        "dev@x",
        "s3cret",
        False,
    )
    secure = Endpoint.from_url("mqtts://broker.local", username="server")
    assert (secure.port, secure.tls, secure.username) == (8883, True, "server")
    assert "s3cret" not in repr(plain) and "s3cret" not in str(plain)
    for bad in ("http://x", "mqtt://", "mqtt://x:99999"):
        with pytest.raises(ValueError, match="broker"):
            Endpoint.from_url(bad)


# paho leaves the socket of a failed TLS handshake for the garbage collector to close.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
async def test_tls_with_the_generated_certificates(tmp_path: Path) -> None:
    """mqtts:// with our CA connects; without trusting it, the handshake is refused."""
    certs = make_certificates(tmp_path / "certs")
    broker = configure_mosquitto(tmp_path / "broker", tls=certs.server_tls())
    PasswordFile(broker.config_file.parent / config.PASSWORD_FILE_NAME).set(
        SERVER[0], mosquitto_hash(SERVER[1])
    )
    async with broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        trusted = Supervisor(
            Endpoint.from_url(url, username=SERVER[0], password=SERVER[1], ca_file=certs.ca_cert),
            Options(client_id="tls-ok", backoff=FAST),
        )
        await trusted.start()
        async with asyncio.timeout(10):
            await trusted.wait_connected()
        await trusted.publish(topics.SERVER_STATUS, b"{}", qos=1)
        await trusted.stop()

        stranger = Supervisor(
            Endpoint.from_url(url, username=SERVER[0], password=SERVER[1]),
            Options(client_id="tls-untrusted", backoff=FAST),
        )
        await stranger.start()
        await eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in stranger.event.detail)
        assert not stranger.connected
        await stranger.stop()
        gc.collect()  # so the leaked socket is reported (and ignored) within this test


async def test_a_decoder_that_raises_costs_its_message_only() -> None:
    """Decoders never raise by contract; when one does (a bug a forged message found), the
    router counts a drop and the next message still goes through."""

    def fragile(topic: topics.ParsedTopic, payload: bytes) -> bytes:
        if payload == b"forged":
            raise TypeError("unhashable type: 'list'")
        return payload

    handled: list[bytes] = []

    async def handle(payload: bytes) -> None:
        handled.append(payload)

    router = Router([Route(topics.ALL_TELEMETRY, 0, fragile, handle)])
    topic = topics.telemetry("press-07")
    await router.dispatch(topic, b"forged")
    await router.dispatch(topic, b"fine")
    assert handled == [b"fine"]
    assert router.dropped["handler_failed"] == 1
