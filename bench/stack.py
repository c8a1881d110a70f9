"""What every end-to-end benchmark stands on: its own database, broker and server backbone."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from uvicorn.loops.auto import auto_loop_factory

from broker.launcher import embedded_broker
from core.db import migrations
from core.db.engine import Database
from core.db.models import Device
from core.passwords import mosquitto_hash
from core.protocol.telemetry import Batch
from core.services.telemetry import partitions
from core.services.telemetry.store import days_of, rows_of
from core.services.telemetry.writer import SAMPLE_COLUMNS
from core.settings import Settings
from webui.app import freeze_startup_heap
from webui.backbone.server import Backbone

T = TypeVar("T")
SERVER = ("server", "bench-server-secret")
DEFAULT_DATABASE = os.environ.get("PP_BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
COPY_BATCH_POINTS = 5_000  # the baseline commits like a busy ingest (ingest_max_rows)


@dataclass(frozen=True)
class Stack:
    """A running bench stack."""

    url: str  # the bench's own PostgreSQL database
    port: int  # the broker's loopback port
    backbone: Backbone
    workdir: Path


def run_as_the_server(main: Coroutine[Any, Any, T]) -> T:
    """Run a bench on the event loop the server runs on: uvicorn's choice, uvloop when it
    is installed (it is, with NiceGUI). Its timers and socket writes cost less than
    asyncio's own loop, and they behave differently: measure the loop that ships."""
    with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        return runner.run(main)


@asynccontextmanager
async def database_of_its_own(server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database on ``server_url``'s server, dropped afterwards."""
    name = f"pp_bench_{os.getpid()}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(migrations.upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def running_stack(url: str, stations: Mapping[str, str]) -> AsyncIterator[Stack]:
    """Mosquitto (our config) with the stations' accounts, and the server's backbone."""
    workdir = Path(tempfile.mkdtemp(prefix="pp-bench-"))
    users = {SERVER[0]: SERVER[1], **stations}
    async with embedded_broker(workdir / "broker", users=users, prefer="mosquitto") as broker:
        database = Database(Settings(database_url=url).async_database_url)
        async with database.session() as session:
            for device_id, password in stations.items():
                session.add(Device(id=device_id, mqtt_password_hash=mosquitto_hash(password)))
        settings = Settings(
            database_url=url,
            mqtt_url=f"mqtt://{broker.host}:{broker.port}",
            mqtt_username=SERVER[0],
            mqtt_password=SERVER[1],
            mqtt_client_id="pp-bench-server",
            mqtt_shared_ingest=broker.kind == "mosquitto",
            signing_key_file=workdir / "server-signing-key.pem",  # not the checkout's data/
        )
        backbone = Backbone(settings, database)
        await backbone.start()
        assert backbone.supervisor is not None
        async with asyncio.timeout(10):
            await backbone.supervisor.wait_connected()
        freeze_startup_heap()  # as the server does once it has started
        try:
            yield Stack(url, broker.port, backbone, workdir)
        finally:
            await backbone.stop()
            await database.close()


async def raw_copy_rate(url: str, batches: Iterable[Batch]) -> float:
    """Points a second a bare asyncpg COPY stores of ``batches`` into ``telemetry_samples``.

    The same table, partitions and indexes as ingest writes to, committed in transactions
    of about as many points as ingest's; the batches need streams of their own.
    """
    batches = list(batches)
    rows = rows_of(batches, received_at=datetime.now(UTC))
    points = sum(len(sample.values) for batch in batches for sample in batch.samples)
    per_commit = max(1, COPY_BATCH_POINTS * len(rows) // max(1, points))
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await partitions.ensure(connection, days_of(batches), database=url)
        start = time.perf_counter()
        for low in range(0, len(rows), per_commit):
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "telemetry_samples",
                    records=rows[low : low + per_commit],
                    columns=SAMPLE_COLUMNS,
                )
        return points / (time.perf_counter() - start)
    finally:
        await connection.close()
