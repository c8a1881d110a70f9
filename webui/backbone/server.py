"""The server's MQTT side put together: one supervisor feeding ingest and presence.

Replicas of the server on one database hear each other's commits through the fan-out
(PostgreSQL only): the hub, last seen, identity, alarms, command waiters and the device
directory of each then agree with what any of them stored. Presence needs none: every
replica subscribes to every status and heartbeat (only ingest and sync are ``$share``d).
The server's own retained status stays online while any replica is (``replica_status``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.db.availability import database_unavailable, describe, log_failure
from core.db.engine import Database
from core.events import CommandChanged, DesiredConfigChanged, DeviceChanged, SyncChanged
from core.mqtt.endpoint import Endpoint
from core.mqtt.link import LinkEvent, LinkState, NotConnectedError, Options, Outgoing
from core.mqtt.routing import Router
from core.mqtt.supervisor import Supervisor
from core.protocol import topics
from core.protocol.messages import encode
from core.protocol.signing import SigningKey, load_or_create
from core.protocol.telemetry import Batch, Limits
from core.settings import Settings
from core.tasks import TaskSet
from webui.backbone.accounts import BrokerAccounts
from webui.backbone.alarms import Alarms
from webui.backbone.command_waiters import CommandWaiters
from webui.backbone.commands import CommandDispatcher
from webui.backbone.configs import DeviceConfigs
from webui.backbone.directory import DeviceDirectory
from webui.backbone.fanout import Fanout
from webui.backbone.hub import Hub
from webui.backbone.identity import Identity, Sighting
from webui.backbone.ingest import Ingest, IngestOptions
from webui.backbone.last_seen import LastSeen
from webui.backbone.metrics import Metrics
from webui.backbone.presence import Presence
from webui.backbone.replica_status import ReplicaStatus
from webui.backbone.sync import SyncWire
from webui.backbone.telemetry_upkeep import TelemetryUpkeep

log = logging.getLogger(__name__)
# A database away when the broker's accounts are due: written again this often until it
# answers (the broker keeps the file it has meanwhile, so known stations still connect).
ACCOUNTS_RETRY_S = 5.0


def _server_status(node: str, state: str, reason: str | None = None) -> Outgoing:
    message: dict[str, Any] = {"v": 1, "type": "server.status", "node": node, "state": state}
    if reason is not None:
        message["reason"] = reason
    return Outgoing(topics.SERVER_STATUS, encode(message), qos=1, retain=True)


def supervisor_for(settings: Settings, router: Router) -> Supervisor | None:
    """The server's supervisor, or None when no broker is configured."""
    if not settings.mqtt_url:
        return None
    endpoint = Endpoint.from_url(
        settings.mqtt_url,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        ca_file=settings.mqtt_ca_file,
    )
    node = settings.node_id
    options = Options(
        # Our brokers bind a client's id to its username, so the session is the account's:
        # each server replica needs a broker account of its own, or they take turns.
        client_id=settings.mqtt_client_id or settings.mqtt_username or f"pp-{node}",
        birth=_server_status(node, "online"),
        will=_server_status(node, "offline", "lost"),
        farewell=_server_status(node, "offline", "clean"),
        inflight_window=settings.mqtt_inflight_window,
    )
    return Supervisor(endpoint, options, router)


def server_signing_key(path: Path) -> SigningKey:
    """The server's signing key (created when absent), its public half kept beside it."""
    key = load_or_create(path)
    public = path.with_name(f"{path.stem}.pub.pem")
    pem = key.public_key().to_pem()
    if not public.exists() or public.read_bytes() != pem:
        public.write_bytes(pem)
    # Stations and operators copy it (--server-key): readable by all, whatever the umask
    # (the server runs with 077 so that its secrets are private).
    public.chmod(0o644)
    return key


class Backbone:
    """Starts and stops the link, ingest and presence together; answers health and metrics."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self._database = database
        self._unsubscribe: list[Callable[[], None]] = []
        self.router = Router()
        self.supervisor = supervisor_for(settings, self.router)
        self.directory = DeviceDirectory(database)
        self.presence = Presence(database, self.directory)
        self.metrics = Metrics(self.router, self._link_up, self.presence.online)
        limits = Limits(
            max_payload_bytes=settings.telemetry_max_payload_bytes,
            max_samples=settings.telemetry_max_samples,
            max_channels=settings.telemetry_max_channels,
        )
        self.ingest = Ingest(
            database,
            self.directory,
            self.metrics,
            publish_ack=self._publish_ack,
            drop=self.router.drop,
            options=IngestOptions(
                limits=limits,
                linger_ms=settings.ingest_linger_ms,
                max_rows=settings.ingest_max_rows,
                queue_messages=settings.ingest_queue_messages,
                workers=settings.ingest_workers,
                shared=settings.mqtt_shared_ingest,
            ),
        )
        self.upkeep = TelemetryUpkeep(
            database, self.metrics, retention_days=settings.telemetry_retention_days
        )
        self.hub = Hub()
        self.ingest.commits.add(self.hub.on_commit)
        self.alarms = Alarms(database)  # thresholds checked on each commit, after the hub
        self.ingest.commits.add(self.alarms.on_commit)
        self.last_seen = LastSeen(database)
        self.router.delivered.add(self.last_seen.on_delivery)
        self.identity = Identity(database)
        self.ingest.sightings.add(self.identity.seen)
        self.presence.sightings.add(self.identity.seen)
        self.signing_key = server_signing_key(settings.signing_key_file)
        self.configs = DeviceConfigs(database, self.signing_key, self._publish_retained)
        self.commands = CommandDispatcher(
            database,
            self.signing_key,
            self._publish_command,
            online=self._device_online,
            link_up=self._link_up,
        )
        self.presence.changes.add(self.commands.on_presence)
        self.command_waiters = CommandWaiters()  # API long polls, woken by committed ends
        # A replica's id: a process's own, so a restarted or misnamed replica never takes
        # another's messages for its own.
        self.fanout = Fanout(database, replica=f"{settings.node_id}-{uuid.uuid4().hex[:8]}")
        self.ingest.commits.add(self.fanout.on_commit)  # after the hub and alarms: told last
        self.metrics.watch_fanout(
            lambda: (self.fanout.sent, self.fanout.received, self.fanout.dropped)
        )
        self.fanout.telemetry.add(self.hub.on_commit)
        self.fanout.telemetry.add(self._committed_elsewhere)
        self.alarms.stored.add(self.fanout.alarms_written)
        self.fanout.alarms.add(self._alarms_elsewhere)
        self.fanout.configs.add(self._config_elsewhere)
        self.fanout.resumed.add(self._news_missed)
        self.fanout.commands.add(self.command_waiters.wake)
        self.fanout.devices.add(lambda event: self.directory.forget(event.device_id))
        self.sync = SyncWire(
            database,
            settings,
            self.signing_key,
            publish=self._publish_sync,
            directory=self.directory,
            drop=self.router.drop,
            link_up=self._link_up,
        )
        self._birth = _server_status(settings.node_id, "online")
        self.replica_status = ReplicaStatus(
            settings.node_id, birth=self._say_birth, link_up=self._link_up
        )
        for route in [*self.ingest.routes(), *self.presence.routes(), *self.configs.routes()]:
            self.router.add(route)
        for status_route in self.replica_status.routes():
            self.router.add(status_route)
        for command_route in self.commands.routes():
            self.router.add(command_route)
        for sync_route in self.sync.routes():
            self.router.add(sync_route)
        self._background = TaskSet("backbone")
        if self.supervisor is not None:
            self.supervisor.add_listener(self._on_link)
            self.supervisor.add_listener(self.commands.on_link)
        self.accounts: BrokerAccounts | None = None
        if settings.broker_password_file is not None:
            server = None
            if settings.mqtt_username and settings.mqtt_password:
                server = (settings.mqtt_username, settings.mqtt_password)
            self.accounts = BrokerAccounts(
                database,
                settings.broker_password_file,
                pid_file=settings.broker_pid_file,
                server=server,
            )

    async def _device_changed(self, event: DeviceChanged) -> None:
        """A device was created, edited, disabled or given new credentials (committed)."""
        self.directory.forget(event.device_id)
        await self._sync_accounts()

    def _committed_elsewhere(self, batches: list[Batch]) -> None:
        """Another replica stored these: their devices were heard, by these instances."""
        now = datetime.now(UTC)
        for batch in batches:
            self.last_seen.heard(batch.device_id, now)
            self.identity.seen(Sighting(batch.device_id, batch.stream, now))

    def _alarms_elsewhere(self, device_id: str) -> None:
        self._background.spawn(self.alarms.read_again(device_id), name="alarms read again")

    def _news_missed(self, _resumes: int) -> None:
        self._background.spawn(self.alarms.read_all_again(), name="alarms read again")

    def _config_elsewhere(self, event: DesiredConfigChanged) -> None:
        read = self.alarms.read_again(event.device_id, thresholds=True)
        self._background.spawn(read, name="thresholds read again")

    async def _config_changed(self, event: DesiredConfigChanged) -> None:
        """A device's desired configuration changed (committed): publish it."""
        if self._link_up():
            try:
                await self.configs.publish(event.device_id)
            except Exception as error:  # the next connect publishes every configuration
                log.warning("desired configuration of %s not published: %s", event.device_id, error)

    def _on_link(self, event: LinkEvent) -> None:
        if event.state is LinkState.CONNECTED:  # retained copies may be gone: publish all
            self._background.spawn(self._publish_configs(), name="publish configurations")

    async def _publish_configs(self) -> None:
        try:
            await self.configs.publish_all()
        except Exception:  # the next connect tries again; a change publishes on its own
            log_failure(log, "publishing desired configurations failed")

    async def _sync_accounts(self) -> None:
        """Write the broker's accounts; a broker that cannot be told must not stop ingest."""
        if self.accounts is None:
            return
        try:
            await self.accounts.sync()
        except Exception as error:
            if database_unavailable(error):  # the broker keeps the accounts it was last told
                why = f"database unavailable ({describe(error)}); again in {ACCOUNTS_RETRY_S} s"
                log.warning("broker accounts not synced: %s", why)
                self._background.spawn(self._sync_accounts_later(), name="broker accounts")
            elif isinstance(error, OSError | RuntimeError | ValueError):  # BrokerReloadError too
                log.error("broker accounts not synced: %s", error)
            else:
                raise

    async def _sync_accounts_later(self) -> None:
        await asyncio.sleep(ACCOUNTS_RETRY_S)
        await self._sync_accounts()  # which tries again later if the database is still away

    def _link_up(self) -> bool:
        return self.supervisor is not None and self.supervisor.connected

    async def _say_birth(self) -> None:
        """Our birth again, retained (another replica's will or farewell replaced it)."""
        assert self.supervisor is not None  # said only while the link is up
        birth = self._birth
        await self.supervisor.publish(birth.topic, birth.payload, qos=birth.qos, retain=True)

    async def _publish_retained(self, topic: str, payload: bytes) -> None:
        assert self.supervisor is not None  # configurations are published only when linked
        await self.supervisor.publish(topic, payload, qos=1, retain=True)

    async def _publish_command(self, topic: str, payload: bytes) -> None:
        if self.supervisor is None:
            msg = "no broker configured (PP_MQTT_URL is empty)"
            raise NotConnectedError(msg)
        await self.supervisor.publish(topic, payload, qos=2)  # returns on PUBCOMP

    def _device_online(self, device_id: str) -> bool:
        state = self.presence.state(device_id)
        return state is not None and state.status == "online"

    async def _publish_sync(self, topic: str, payload: bytes) -> None:
        if self.supervisor is None:
            msg = "no broker configured (PP_MQTT_URL is empty)"
            raise NotConnectedError(msg)
        await self.supervisor.publish(topic, payload, qos=1)

    async def _publish_ack(self, topic: str, payload: bytes) -> None:
        assert self.supervisor is not None  # acks only follow messages the link received
        await self.supervisor.publish(topic, payload, qos=1)

    def link(self) -> dict[str, str]:
        """The broker link for the health endpoint: state, since when, and why."""
        if self.supervisor is None:
            return {"state": "disabled", "since": "", "detail": "PP_MQTT_URL is empty"}
        event = self.supervisor.event
        return {
            "state": event.state.value,
            "since": event.since.isoformat(),
            "detail": event.detail,
        }

    async def start(self) -> None:
        """Hear of committed changes, write the broker's accounts, start the workers, connect."""
        bus = self._database.events
        self._unsubscribe = [
            bus.subscribe(DeviceChanged, self._device_changed),
            bus.subscribe(DesiredConfigChanged, self._config_changed),
            bus.subscribe(CommandChanged, self.commands.on_changed),
            bus.subscribe(CommandChanged, self.command_waiters.on_changed),
            bus.subscribe(SyncChanged, self.sync.on_changed),
        ]
        await self._sync_accounts()
        await self.upkeep.start()  # the days ahead made first, in the background
        await self.alarms.start()  # loads in the background; earlier commits wait for it
        await self.fanout.start()  # before ingest: its first commits are told
        await self.ingest.start()
        await self.presence.start()
        await self.last_seen.start()
        await self.identity.start()
        await self.commands.start()  # deadlines re-armed from the database
        await self.sync.start()
        if self.supervisor is not None:
            await self.supervisor.start()

    async def stop(self) -> None:
        """Store and ack what was received, then say goodbye to the broker."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self._background.cancel()
        await self.upkeep.stop()
        await self.ingest.stop()
        await self.alarms.stop()  # after ingest: the last commits' alarms are stored too
        await self.fanout.stop()  # after both: what they stored last is told
        await self.presence.stop()
        await self.sync.stop()  # before the link: pulls and edits received are answered
        if self.supervisor is not None:
            await self.supervisor.stop()
        await self.commands.stop()  # after the link: the answers it received are recorded
        await self.identity.stop()
        await self.last_seen.stop()  # after the link: the last messages' times are stored too
