"""The server's telemetry upkeep: the days ahead made on start, removals counted in /metrics."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text

from core.db.engine import Database
from core.db.models import AuditEntry
from core.mqtt.routing import Router
from core.protocol.telemetry import Batch, Sample
from core.services.telemetry import ingest_hours, partitions, store
from core.settings import Settings
from tests.core.retention_data import (
    FIRST_KEPT,
    KEEP,
    NOW,
    OLD,
    TODAY,
    add_gaps,
    add_quarantined,
    add_rollups,
    add_samples,
    tables,
)
from webui.backbone import telemetry_upkeep
from webui.backbone.metrics import Metrics
from webui.backbone.server import Backbone
from webui.backbone.telemetry_upkeep import TelemetryUpkeep


@pytest.mark.backends("one")
async def test_the_server_makes_the_days_ahead_on_start(
    settings: Settings, database: Database
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("day partitions: PostgreSQL")
    ahead = partitions.name_of(TODAY + timedelta(days=partitions.AHEAD_DAYS))
    async with database.session() as session:  # the migration made it: take it away
        await session.execute(text(f"DROP TABLE IF EXISTS {ahead}"))
    partitions.forget()
    backbone = Backbone(settings, database)  # no broker: PP_MQTT_URL is empty
    await backbone.start()
    try:
        async with asyncio.timeout(5):
            while ahead not in await tables(database):  # noqa: ASYNC110 (no event: another connection)
                await asyncio.sleep(0.05)
        assert (await tables(database))[ahead].attached
    finally:
        await backbone.stop()


async def test_a_round_counts_what_it_removed(database: Database) -> None:
    await add_samples(database, "press-07", OLD, 3)
    await add_samples(database, "press-07", FIRST_KEPT, 1)
    await add_rollups(database, "press-07", "temp", OLD, 2)
    await add_quarantined(database, "press-07", OLD, 4)
    await add_gaps(database, "press-07", OLD, 1)
    metrics = Metrics(Router(), lambda: False, lambda: 0)
    upkeep = TelemetryUpkeep(database, metrics, retention_days=KEEP, clock=lambda: NOW)

    await upkeep.run_round()
    await upkeep.run_round()  # nothing more to remove: nothing more counted

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    rows = "pp_telemetry_retention_rows_deleted_total"
    assert value(rows, table="telemetry_samples") == 3
    assert value(rows, table="telemetry_rollups") == 2
    assert value(rows, table="telemetry_quarantine") == 4
    assert value(rows, table="telemetry_gaps") == 1
    exposed = metrics.render().decode()
    assert f'{rows}{{table="telemetry_samples"}} 3.0' in exposed
    dropped = value("pp_telemetry_retention_partitions_dropped_total")
    present = value("pp_telemetry_partitions")
    if database.dialect == "postgresql":  # OLD's, and any other test left older than it
        assert dropped is not None and dropped >= 1
        assert present == len(await tables(database)) > partitions.AHEAD_DAYS
    else:
        assert (dropped, present) == (0, 0)


async def test_the_upkeep_audits_ended_hours_at_start_and_keeps_going_after_a_failure(
    database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The summary runs at start and every SUMMARY_INTERVAL_S; a failed one is logged and
    the loop goes on."""
    hour = NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    batch = Batch("press-07", "s1", "live", (Sample(1, 1_764_170_000_123, {"parts": 1}),))
    await store.store(database, [batch], received_at=hour + timedelta(minutes=10))
    calls: list[datetime] = []
    real = ingest_hours.summarize

    async def flaky(database: Database, *, now: datetime) -> list[ingest_hours.Summary]:
        calls.append(now)
        if len(calls) == 1:
            msg = "database away"
            raise OSError(msg)
        return await real(database, now=now)

    monkeypatch.setattr(ingest_hours, "summarize", flaky)
    monkeypatch.setattr(telemetry_upkeep, "SUMMARY_INTERVAL_S", 0.01)
    metrics = Metrics(Router(), lambda: False, lambda: 0)
    upkeep = TelemetryUpkeep(database, metrics, retention_days=0, clock=lambda: NOW)
    await upkeep.start()
    try:
        async with asyncio.timeout(5):
            while len(calls) < 3:  # noqa: ASYNC110 (the loop's own pace)
                await asyncio.sleep(0.01)
    finally:
        await upkeep.stop()
    assert "ingest summary failed" in caplog.text
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == ingest_hours.ACTION)
        entries = [(e.target_id, e.after) for e in await session.scalars(query)]
    assert entries == [
        (
            "press-07",
            {"hour": hour.isoformat(), "stored": 1, "replayed": 0, "quarantined": 0, "dropped": 0},
        )
    ]
