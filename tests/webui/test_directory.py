"""The device directory answers from one read of the whole table, not a query per device."""

from __future__ import annotations

from sqlalchemy import update

from core.db.engine import Database
from core.db.models import Device
from tests.mqtt.server import register
from webui.backbone.directory import DeviceDirectory, Standing


async def test_a_fleet_costs_one_query_and_changes_show_after_forget(database: Database) -> None:
    ids = [f"sim-{n:03d}" for n in range(50)]
    await register(database, ids, disabled=["retired"])
    directory = DeviceDirectory(database, ttl=60)
    for _ in range(3):
        assert {await directory.standing(d) for d in ids} == {Standing.ENABLED}
    assert await directory.standing("retired") is Standing.DISABLED
    assert directory.queries == 1

    async with database.session() as session:
        await session.execute(update(Device).where(Device.id == "sim-007").values(enabled=False))
    assert await directory.standing("sim-007") is Standing.ENABLED  # cached until told
    directory.forget("sim-007")
    assert await directory.standing("sim-007") is Standing.DISABLED


async def test_unknown_devices_are_asked_for_once_per_ttl(database: Database) -> None:
    directory = DeviceDirectory(database, ttl=60)
    assert await directory.standing("ghost") is Standing.UNKNOWN
    assert await directory.standing("ghost") is Standing.UNKNOWN
    assert directory.queries == 2  # the table, then the ghost once
    await register(database, ["ghost"])
    directory.forget("ghost")
    assert await directory.standing("ghost") is Standing.ENABLED


async def test_the_table_is_read_again_after_the_ttl(database: Database) -> None:
    await register(database, ["press-07"])
    directory = DeviceDirectory(database, ttl=0)
    await directory.standing("press-07")
    await directory.standing("press-07")
    assert directory.queries == 2
