"""One asyncio supervisor around the process's one MQTT connection (the only aiomqtt user).

It re-enters the client in a loop with capped, jittered backoff; subscribes every route
again on each connect; publishes a birth message and registers a last will; bounds the
QoS 1/2 messages in flight; tells listeners when the link comes and goes; gives up, and
says so, when the broker refuses the credentials; yields, waiting longer each time, while a
rival with the same client id keeps taking the session over (see ``takeover``); and on
``stop`` publishes a farewell before it disconnects cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import select
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from core.mqtt.endpoint import Endpoint
from core.mqtt.link import LinkEvent, LinkState, NotConnectedError, Options
from core.mqtt.routing import Route, Router
from core.mqtt.takeover import TAKEN_OVER, Rivalry
from core.tasks import Listeners, cancel_and_wait

log = logging.getLogger(__name__)

# CONNACK codes that no retry can fix: MQTT 3.1.1's 4/5 and MQTT 5's 0x86/0x87.
AUTH_FAILURES = frozenset({4, 5, 134, 135})
# paho's reason for a connection it closed itself, the broker silent past the keepalive.
KEEPALIVE_TIMEOUT = 0x8D
UNSPECIFIED = 0x80  # paho's reason for a connection the broker closed without a word
# aiomqtt reads one packet per readable event and hands over one message per event-loop
# turn. A server's loop also serves HTTP, and its turns take milliseconds: intake fell
# seconds behind (300 msg/s against 20 ms turns: 4 s at the median, 60 ms once drained),
# and commands expired with their answers waiting in the socket. Each readable event now
# reads what the socket holds, and each turn routes what aiomqtt has queued, up to these.
READ_BURST = 256
ROUTE_BURST = 1_000


class _Client(aiomqtt.Client):
    """aiomqtt's client, reading every packet the socket holds when it is readable."""

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)  # its reader, replaced below

        def read() -> None:
            try:
                for _ in range(READ_BURST):
                    client.loop_read()
                    if not _readable(client.socket()):
                        return
            except Exception as error:  # as aiomqtt's own reader: the connection broke
                if not self._disconnected.done():
                    self._disconnected.set_exception(error)

        # Queued after aiomqtt's own add_reader, so this one takes its place.
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), read)


def _readable(sock: Any) -> bool:
    """Whether ``sock`` holds more to read now (TLS may hold decoded bytes of its own)."""
    if sock is None:
        return False
    if hasattr(sock, "pending") and sock.pending() > 0:
        return True
    if hasattr(select, "poll"):  # select() refuses a descriptor past 1,023 (FD_SETSIZE)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # Windows: no poll, and no such limit


def _queued(client: aiomqtt.Client) -> Iterator[aiomqtt.Message]:
    """Messages aiomqtt has queued already, taken now rather than one a loop turn."""
    queue: asyncio.Queue[aiomqtt.Message] = client._queue  # no public way to take them
    for _ in range(ROUTE_BURST):
        try:
            yield queue.get_nowait()
        except asyncio.QueueEmpty:
            return


class Supervisor:
    """Keeps one MQTT connection up, routes what arrives and publishes what is given."""

    def __init__(self, endpoint: Endpoint, options: Options, router: Router | None = None) -> None:
        self.endpoint = endpoint
        self.options = options
        self.router = router or Router()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._window = asyncio.Semaphore(options.inflight_window)
        self._listeners: Listeners[LinkEvent] = Listeners("link")
        self._event = LinkEvent(LinkState.STOPPED, datetime.now(UTC))
        self._connected = asyncio.Event()
        self._rng = random.Random()
        self._rivalry = Rivalry(options.takeover, self._rng)
        self.connects = 0

    @property
    def takeovers(self) -> int:
        """Sessions a rival with our client id took over (counted once a pattern shows)."""
        return self._rivalry.takeovers

    # -- state -------------------------------------------------------------------------

    @property
    def event(self) -> LinkEvent:
        """The current state, since when, and why."""
        return self._event

    @property
    def connected(self) -> bool:
        """Whether messages can be published right now."""
        return self._event.state is LinkState.CONNECTED

    def add_listener(self, listener: Callable[[LinkEvent], None]) -> Callable[[], None]:
        """Call ``listener`` on every state change; returns the function that removes it."""
        return self._listeners.add(listener)

    def _set(self, state: LinkState, detail: str = "", since: datetime | None = None) -> None:
        if state is self._event.state and detail == self._event.detail:
            return
        self._event = LinkEvent(state, since or datetime.now(UTC), detail)
        if state is LinkState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        self._listeners.emit(self._event)

    async def wait_connected(self) -> None:
        """Wait until the link is up (wrap in ``asyncio.timeout`` to bound the wait)."""
        await self._connected.wait()

    # -- routes and publishing ---------------------------------------------------------

    async def route(self, route: Route[Any]) -> None:
        """Add a route; it is subscribed now if connected, and again on every connect."""
        self.router.add(route)
        client = self._client
        if client is not None and self.connected:
            await client.subscribe(route.topic_filter, qos=route.qos)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish now; QoS 1/2 returns once the broker has it. NotConnectedError if down."""
        client = self._client
        if client is None or not self.connected:
            msg = f"not connected to {self.endpoint} ({self._event.state})"
            raise NotConnectedError(msg)
        if qos == 0:
            await client.publish(topic, payload, qos=0, retain=retain)
            return
        async with self._window:
            await client.publish(
                topic, payload, qos=qos, retain=retain, timeout=self.options.publish_timeout
            )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self._task is not None and not self._task.done():
            return
        self._set(LinkState.STARTING)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-supervisor")

    async def stop(self) -> None:
        """Publish the farewell (if connected), disconnect cleanly and stop reconnecting."""
        farewell = self.options.farewell
        if farewell is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, NotConnectedError, TimeoutError):
                async with asyncio.timeout(self.options.publish_timeout):
                    await self.publish(
                        farewell.topic, farewell.payload, qos=farewell.qos, retain=farewell.retain
                    )
        task, self._task = self._task, None
        if task is not None:  # the client disconnects cleanly within its own timeout
            await cancel_and_wait([task], retry_s=self.options.publish_timeout + 1)
        self._set(LinkState.STOPPED)

    def _new_client(self) -> aiomqtt.Client:
        will = self.options.will
        client = _Client(
            self.endpoint.host,
            self.endpoint.port,
            username=self.endpoint.username,
            password=self.endpoint.password,
            identifier=self.options.client_id,
            clean_session=self.options.clean_session,
            keepalive=self.options.keepalive,
            will=aiomqtt.Will(will.topic, will.payload, will.qos, will.retain) if will else None,
            tls_context=self.endpoint.ssl_context(),
            max_inflight_messages=self.options.inflight_window,
            timeout=self.options.publish_timeout,
            # paho leaves Nagle on: small QoS 0 messages then wait for the peer's delayed
            # ACK, which cost 8 ms at the median and 40 ms at p99 from publish to ingest.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        # Our window bounds the publishes pending at once; aiomqtt warns past 10, which a busy
        # server passes all the time (a command bench logged 4,000 such lines in two minutes).
        client.pending_calls_threshold = self.options.inflight_window
        return client

    async def _run(self) -> None:
        failed = 0  # connects refused or failed since the last session
        while True:
            client = self._new_client()
            opened, conflict = False, None
            try:
                async with client:
                    opened = True
                    self._rivalry.opened(time.monotonic(), first_attempt=failed == 0)
                    failed = 0
                    await self._session(client)
            except MqttConnectError as error:
                if _code(error) in AUTH_FAILURES:
                    detail = f"{self.endpoint} refused the credentials: {error}; not retrying"
                    log.error("%s", detail)
                    self._set(LinkState.AUTH_FAILED, detail)
                    return
                self._lost(f"connect refused: {error}")
            except (aiomqtt.MqttError, OSError) as error:
                conflict = self._closed(error) if opened else None
                if conflict is None:
                    self._lost(str(error) or type(error).__name__)
            finally:
                self._client = None
            if conflict is not None:  # yield to the rival; then connect as a first attempt
                await asyncio.sleep(conflict)
                continue
            failed += 0 if opened else 1
            await asyncio.sleep(self.options.backoff.delay(failed, self._rng))

    def _closed(self, error: Exception) -> float | None:
        """Judge a session that ended; in a conflict, say so and return the wait to yield."""
        code = _reason(error)
        wait = self._rivalry.closed(
            time.monotonic(),
            by_broker=code is not None and code != KEEPALIVE_TIMEOUT,
            taken_over=code == TAKEN_OVER,
        )
        since = self._rivalry.since
        if wait is None or since is None:
            return None
        # Our brokers bind a client's id to its username, so only these credentials can
        # take the session: name them, not the id (which the broker replaced anyway).
        who = self.endpoint.username or self.options.client_id
        detail = (
            f"credentials in use elsewhere since {since:%H:%M:%S} UTC: another client logged"
            f" in as {who} took the session over {self._rivalry.takeovers} times;"
            f" retrying in {wait:.0f} s"
        )
        log.warning("%s (%s)", detail, self.endpoint)
        self._set(LinkState.CONFLICT, detail, since)
        return wait

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection's life: resubscribe, announce, then route until it drops."""
        await _until_dropped(client, self._announce(client))
        self._client = client
        self.connects += 1
        self._set(LinkState.CONNECTED, str(self.endpoint))
        log.info("connected to %s", self.endpoint)
        async for message in client.messages:
            await self._dispatch(message)
            for queued in _queued(client):
                await self._dispatch(queued)

    async def _dispatch(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        await self.router.dispatch(message.topic.value, data, retained=message.retain)

    async def _announce(self, client: aiomqtt.Client) -> None:
        for route in list(self.router.routes):
            await client.subscribe(route.topic_filter, qos=route.qos)
        birth = self.options.birth
        if birth is not None:
            await client.publish(birth.topic, birth.payload, qos=birth.qos, retain=birth.retain)

    def _lost(self, detail: str) -> None:
        if self._event.state is LinkState.CONNECTED:
            log.warning("lost the link to %s: %s", self.endpoint, detail)
        self._set(LinkState.RECONNECTING, detail)


async def _until_dropped(client: aiomqtt.Client, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` on a fresh connection; if the connection drops first, raise at once.

    aiomqtt's subscribe and publish wait out their timeout on a dropped connection: over a
    slow link a rival takes the session over while we subscribe, and we would time out
    10 s later (no sign of the broker's doing) instead of seeing the drop.
    """
    dropped: asyncio.Future[None] = client._disconnected  # no public way to watch for it
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait((task, dropped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            await cancel_and_wait([task])
    if task.cancelled():  # only the drop cancels it
        msg = "Disconnected while subscribing"
        raise aiomqtt.MqttError(msg) from dropped.exception()
    task.result()


def _reason(error: BaseException) -> int | None:
    """The reason code of a dropped connection: on the error or its cause; None if neither.

    A connection the peer reset is the broker's doing too, like a close (MQTT 3.1.1: 0x80).
    """
    for candidate in (error, error.__cause__):
        if isinstance(candidate, aiomqtt.MqttCodeError) and not isinstance(
            candidate, MqttConnectError
        ):
            return _code(candidate)
        if isinstance(candidate, ConnectionError):
            return UNSPECIFIED
    return None


def _code(error: aiomqtt.MqttCodeError) -> int | None:
    rc = error.rc
    if isinstance(rc, int):
        return rc
    value = getattr(rc, "value", None)
    return value if isinstance(value, int) else None
