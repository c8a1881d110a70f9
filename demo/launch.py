"""``precisionpulse demo``: an embedded broker, the server and three simulated stations at once.

``ui.run`` owns the event loop, so the broker and the stations ride on the app's lifecycle.
NiceGUI runs asynchronous startup hooks side by side, so one hook starts the broker, waits
for the server's link (which retries until the broker listens, a fraction of a second
later), then starts the stations and says how to open a station window on the demo.
While it runs, it writes the broker's accounts from the database every second, so a device
another process registers (``simulate --register``, the CLI) can connect at once, as one
registered on the Devices page can. Shutdown hooks run one after the other in
the order registered, so ours go around the ones ``build`` adds: the stations stop first
(and the server records their clean offline), then the backbone drains and the database
closes, and the broker stops last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from nicegui import app, background_tasks, ui

from broker.config import DEFAULT_SERVER_USERNAME, PASSWORD_FILE_NAME
from broker.launcher import LOOPBACK, BrokerKind, EmbeddedBroker, embedded_broker
from broker.mosquitto_process import BrokerStartError, free_port
from core.db.migrations import upgrade
from core.mqtt.endpoint import Endpoint
from core.settings import Settings
from demo.accounts import WINDOW_STATION
from demo.hints import WindowCommand, program
from demo.preparation import DemoPaths, prepare_demo
from desktop.agent.fleet import Fleet, template
from webui.app import build, run_kwargs
from webui.backbone.server import server_signing_key

log = logging.getLogger(__name__)
# MQTT's own port, which every station command takes by default (PP_MQTT_URL): the commands
# the demo prints stay the same from run to run. Taken (a Mosquitto service): a free one.
DEFAULT_BROKER_PORT = 1883
# A device another process registers can connect within this; one small query each time.
ACCOUNTS_EVERY_S = 1.0
RATE_HZ = 1.0  # a sample a second per station: a lively dashboard, a slowly growing database
LINK_TIMEOUT_S = 10.0  # the stations start anyway after this; their outboxes keep every sample
FAREWELL_TIMEOUT_S = 3.0  # for the server to record the stations' clean offline


def demo_settings(base: Settings, paths: DemoPaths, *, kind: BrokerKind, port: int) -> Settings:
    """``base`` pointed at the demo's SQLite file and its embedded broker on ``port``."""
    return base.model_copy(
        update={
            "database_url": f"sqlite:///{paths.database}",
            "mqtt_url": f"mqtt://127.0.0.1:{port}",
            "mqtt_username": DEFAULT_SERVER_USERNAME,
            "mqtt_password": secrets.token_urlsafe(18),  # new each run: only this process uses it
            "mqtt_ca_file": None,
            "signing_key_file": paths.signing_key,
            "mqtt_shared_ingest": kind == "mosquitto",  # amqtt has no $share
            "broker_password_file": paths.broker / PASSWORD_FILE_NAME,
            # Where configure_mosquitto tells Mosquitto to write it; amqtt needs no reload.
            "broker_pid_file": paths.broker / "mosquitto.pid" if kind == "mosquitto" else None,
        }
    )


class Companions:
    """The broker and the stations around the server, started and stopped with it."""

    def __init__(
        self,
        settings: Settings,
        paths: DemoPaths,
        fleet: Fleet,
        kind: BrokerKind,
        url: str,
        *,
        window: bool,
    ) -> None:
        self._settings, self._paths, self._fleet, self._kind = settings, paths, fleet, kind
        self._url, self._window = url, window
        self._stack = AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self._accounts: asyncio.Task[None] | None = None
        self._broker: EmbeddedBroker | None = None
        self._stopping = False
        self.failed = False  # the broker did not start

    def install(self, build_server: Callable[[], object]) -> None:
        """Register our hooks around the server's: the order is the shutdown order."""
        app.on_startup(self._begin)
        app.on_shutdown(self._stop_stations)  # before the backbone stops: it hears the goodbyes
        build_server()
        app.on_shutdown(self._stop_broker)  # after the backbone's farewell and last ack

    def _begin(self) -> None:
        self._task = background_tasks.create(self._start(), name="demo start")

    async def _start(self) -> None:
        settings = self._settings
        assert settings.mqtt_password is not None
        broker = embedded_broker(
            self._paths.broker,
            users={DEFAULT_SERVER_USERNAME: settings.mqtt_password},
            prefer=self._kind,
            port=Endpoint.from_url(settings.mqtt_url).port,
        )
        try:
            self._broker = await self._stack.enter_async_context(broker)
        except (BrokerStartError, OSError) as error:
            _say(f"error: the broker did not start: {error}", file=sys.stderr)
            self.failed = True
            app.shutdown()
            return
        _say(f"broker ({self._broker.kind}) on {self._broker.host}:{self._broker.port}")
        if self._stopping:
            return
        supervisor = app.state.services.backbone.supervisor
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINK_TIMEOUT_S):
                await _until(lambda: supervisor.connected, supervisor.add_listener)
        if not supervisor.connected:
            _say(f"the server's broker link is not up yet: {supervisor.event.detail}")
        self._accounts = background_tasks.create(self._keep_accounts(), name="demo accounts")
        await self._fleet.start()
        count = len(self._fleet.agents)
        _say(f"ready: {self._url} ({count} stations, a sample a second each; Ctrl-C stops it all)")
        paths = self._paths
        command = WindowCommand(
            program(), self._broker.url, paths.server_key, paths.root / "stations"
        )
        window = WINDOW_STATION if self._window else None
        _say("\n".join(command.guide(window, paths.window_password)))

    async def _keep_accounts(self) -> None:
        """Write the broker's accounts from the database, which other processes change too."""
        accounts = app.state.services.backbone.accounts
        if accounts is None:  # no password file: the demo always has one
            return
        while True:
            await asyncio.sleep(ACCOUNTS_EVERY_S)
            try:
                await accounts.sync()  # rewrites (and reloads) only when something changed
            except Exception:  # the next round tries again; the demo goes on
                log.exception("the broker's accounts were not written")

    async def _stop_stations(self) -> None:
        _say("stopping: the stations, then the server, then the broker")
        self._stopping = True
        if self._accounts is not None:
            self._accounts.cancel()
        if self._task is not None:
            if self._broker is not None:
                self._task.cancel()  # past the broker: nothing is left half-made
            await asyncio.wait([self._task])  # a failure was reported already
        connected = [a.config.device_id for a in self._fleet.agents if a.supervisor.connected]
        await self._fleet.stop()
        presence = app.state.services.backbone.presence

        def recorded() -> bool:
            states = [presence.state(device_id) for device_id in connected]
            return all(s is not None and s.status == "offline" for s in states)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FAREWELL_TIMEOUT_S):
                await _until(recorded, presence.changes.add)

    async def _stop_broker(self) -> None:
        await self._stack.aclose()
        _say("stopped")


async def _until(done: Callable[[], bool], listen: Callable[[Callable[[Any], None]], Any]) -> None:
    """Wait until ``done()``, asking again whenever ``listen``'s source announces a change."""
    changed = asyncio.Event()
    unlisten = listen(lambda _: changed.set())
    try:
        while not done():
            await changed.wait()
            changed.clear()
    finally:
        unlisten()


def run_demo(
    base: Settings,
    *,
    data_dir: Path,
    host: str | None = None,
    port: int | None = None,
    prefer: BrokerKind = "mosquitto",
    reset_admin: bool = False,
    broker_port: int | None = None,
    reset_command: str = "precisionpulse demo --reset-admin-password",
) -> int:
    """Prepare the data directory, then run everything until SIGINT or SIGTERM; an exit code.

    SIGTERM acts as Ctrl-C throughout: while preparing it raises KeyboardInterrupt; while
    serving, uvicorn takes both signals, stops cleanly, then raises the signal again, which
    ends ``ui.run`` with a KeyboardInterrupt that is no failure.
    """
    host, port = host or base.http_host, port or base.http_port
    base.check_listen(host)  # the development key must never be reachable from elsewhere
    _check_free(host, port)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        url = f"http://{'localhost' if host == '0.0.0.0' else host}:{port}"
        settings, companions = _prepare(
            base, data_dir, prefer, url, broker_port, reset_admin, reset_command
        )
        companions.install(lambda: build(settings))
        with contextlib.suppress(KeyboardInterrupt):
            ui.run(host=host, port=port, **run_kwargs(settings))  # type: ignore[arg-type]
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 1 if companions.failed else 0


def _prepare(
    base: Settings,
    data_dir: Path,
    prefer: BrokerKind,
    url: str,
    broker_port: int | None,
    reset_admin: bool,
    reset_command: str,
) -> tuple[Settings, Companions]:
    """Migrate, make sure of the accounts, and set up (not start) the broker and stations."""
    # As the launcher decides, but now: the server's settings depend on it.
    mosquitto = prefer == "mosquitto" and shutil.which("mosquitto") is not None
    kind: BrokerKind = "mosquitto" if mosquitto else "amqtt"
    paths = DemoPaths(data_dir)
    port = _broker_port(broker_port)
    settings = demo_settings(base, paths, kind=kind, port=port)
    paths.root.mkdir(parents=True, exist_ok=True)
    upgrade(settings.async_database_url)
    stations = asyncio.run(
        prepare_demo(settings, paths, new_admin_password=reset_admin, reset_command=reset_command)
    )
    endpoint = Endpoint.from_url(settings.mqtt_url)
    trusted = (server_signing_key(paths.signing_key).public_key(),)
    fleet = Fleet(stations.credentials, template(endpoint, paths.stations, RATE_HZ, trusted))
    return settings, Companions(settings, paths, fleet, kind, url, window=stations.window)


def _broker_port(requested: int | None) -> int:
    """The port asked for; else DEFAULT_BROKER_PORT if free, else any free one (said so)."""
    if requested is not None:
        _check_free(LOOPBACK, requested, what="--broker-port")
        return requested
    try:
        _check_free(LOOPBACK, DEFAULT_BROKER_PORT, what="--broker-port")
    except OSError:
        port = free_port(LOOPBACK)
        _say(
            f"port {DEFAULT_BROKER_PORT} is taken (another broker?): the demo's broker uses {port}"
        )
        return port
    return DEFAULT_BROKER_PORT


def _check_free(host: str, port: int, *, what: str = "--port") -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            msg = f"cannot listen on {host}:{port} ({error.strerror}): choose another {what}"
            raise OSError(msg) from error


def _say(text: str, file: Any = None) -> None:
    print(text, file=file or sys.stdout, flush=True)
