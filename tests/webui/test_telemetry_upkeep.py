"""The server's telemetry upkeep: the days ahead made on start, removals counted in /metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.db.engine import Database
from core.mqtt.routing import Router
from core.services.telemetry import partitions
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
