"""What a chaos run stands on, and the handles its faults pull: every part a real process.

PostgreSQL (a cluster of the run's own), Mosquitto (the project's config: per-device
passwords and ACL, on a fixed port so a restart comes back where the clients look), the
server (``precisionpulse serve``), and the stations, each behind its own fault proxy. Each
part can be killed and started again; ``close`` stops whatever runs and removes the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos.cluster import Cluster
from bench.chaos.proxy import FaultProxy
from bench.chaos.station_process import StationProcess
from bench.seed import admin_and_devices
from bench.server_process import ServerProcess, settings_for
from broker.credentials import PasswordFile
from broker.mosquitto_process import MosquittoProcess, configure_mosquitto
from core.db import migrations
from core.passwords import mosquitto_hash
from core.services.audit_checkpoints import keyed_database
from webui.backbone.server import server_signing_key

SERVER = ("server", "chaos-server-secret")
ADMIN = ("admin", "chaos-admin-password")
# Reads the stations' retained statuses at the end: a server account of its own (the broker
# binds a client id to its account, so it must not take the server's).
WATCH = ("chaos-watch", "chaos-watch-secret")
DISK_MB = 64  # a station's disk: ten minutes at 10 Hz take a few MB; room for its WAL too


@dataclass
class Stage:
    """The run's processes and where they keep their files."""

    workdir: Path
    cluster: Cluster
    broker: MosquittoProcess
    stations: list[StationProcess]
    proxies: list[FaultProxy] = field(default_factory=list)
    # Each station's data directory on a small disk of its own (bench.chaos.station), so it
    # can be filled; None where that cannot be done (mounting needs root).
    disks: list[Any] = field(default_factory=list)
    server: ServerProcess | None = None
    server_starts: int = 0

    @property
    def database_url(self) -> str:
        """The run's database, as the server and the checks reach it."""
        return self.cluster.url

    @property
    def server_key(self) -> Path:
        """The server's public key, which the stations trust."""
        return self.workdir / "server-signing-key.pub.pem"

    # -- the server ---------------------------------------------------------------------

    async def start_server(self) -> None:
        """Start a server (a new process, log and port) and wait until its broker link is up."""
        self.server_starts += 1
        home = self.workdir / f"server-{self.server_starts}"
        home.mkdir()
        settings = settings_for(self.workdir, self.database_url)
        self.server = ServerProcess(home, settings, broker_url=self.broker.url, account=SERVER)
        await asyncio.to_thread(self.server.wait_until_linked)

    def signal_server(self) -> None:
        """Send SIGKILL to the server's whole group (not waiting for it to go)."""
        server = self.server
        if server is not None and server.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)

    def kill_server(self) -> None:
        """SIGKILL the server's whole group: a crash, no goodbye, no drained ingest."""
        self.signal_server()
        if self.server is not None:
            self.server.process.wait()

    @property
    def server_running(self) -> bool:
        """Whether a server process runs."""
        return self.server is not None and self.server.process.poll() is None

    # -- the broker and the database ----------------------------------------------------

    async def kill_broker(self) -> None:
        """SIGKILL Mosquitto: queued messages since its last autosave are gone."""
        await self.broker.kill()

    async def start_broker(self) -> None:
        """Start Mosquitto again on the same port with the same files."""
        if not self.broker.running:
            await self.broker.start()

    # -- the stations --------------------------------------------------------------------

    def start_station(self, index: int, *, skew_s: float = 0.0) -> None:
        """Start station ``index`` behind its proxy, its clock moved by ``skew_s``."""
        self.stations[index].start(self.proxies[index].port, skew_s=skew_s)

    async def close(self) -> None:
        """Stop everything started here, whatever state it is in; remove the cluster."""
        for station in self.stations:
            await asyncio.to_thread(station.stop)
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                await proxy.stop()
        for disk in self.disks:
            if disk is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(disk.__exit__, None, None, None)
        await self.broker.stop()
        await asyncio.to_thread(self.cluster.remove)


def _small_disk() -> Any:
    """bench.chaos.station's SmallDisk when it is there and can mount here; else None."""
    try:
        module = importlib.import_module("bench.chaos.station")
    except ImportError:
        return None
    small_disk = getattr(module, "SmallDisk", None)
    return small_disk if small_disk is not None and small_disk.possible() else None


async def _prepare(url: str, workdir: Path, devices: dict[str, str]) -> None:
    """Schema, the Admin, the devices; the server's keys written where it will load them."""
    await asyncio.to_thread(migrations.upgrade, url)
    settings = settings_for(workdir, url)
    server_signing_key(settings.signing_key_file)  # and its .pub.pem beside it
    database = keyed_database(settings)
    try:
        async with database.session() as session:
            await admin_and_devices(session, ADMIN, devices, configs=True)
    finally:
        await database.close()


async def build(workdir: Path, devices: dict[str, str], interval_s: float) -> Stage:
    """Start the cluster, the broker, the proxies and the server; the stations are not started.

    On an error, whatever was started is stopped again.
    """
    cluster = Cluster()
    broker = configure_mosquitto(workdir / "broker", server_usernames=(SERVER[0], WATCH[0]))
    passwords = PasswordFile(broker.config_file.with_name("passwd"))
    for username, password in {SERVER[0]: SERVER[1], WATCH[0]: WATCH[1], **devices}.items():
        passwords.set(username, mosquitto_hash(password))
    stations = [
        StationProcess(
            device_id,
            password,
            workdir=workdir / "stations",
            server_key=workdir / "server-signing-key.pub.pem",
            interval_s=interval_s,
            quiet_file=workdir / "quiet",
        )
        for device_id, password in devices.items()
    ]
    stage = Stage(workdir, cluster, broker, stations)
    try:
        small_disk = _small_disk()
        for station in stations:
            disk = small_disk(station.data_dir, size_mb=DISK_MB) if small_disk else None
            if disk is not None:
                await asyncio.to_thread(disk.__enter__)
            stage.disks.append(disk)
        await asyncio.to_thread(cluster.init)
        await _prepare(stage.database_url, workdir, devices)
        await broker.start()
        for _ in stations:
            proxy = FaultProxy("127.0.0.1", broker.port)
            await proxy.start()
            stage.proxies.append(proxy)
        await stage.start_server()
    except BaseException:
        await stage.close()
        raise
    return stage
