"""A change announces itself after its commit: services record events, the database publishes."""

from __future__ import annotations

import pytest

from core import events
from core.db.engine import Database
from core.db.models import Device
from core.events import DesiredConfigChanged, DeviceChanged
from core.services import device_configs, devices
from core.services.actor import Actor

ADMIN = Actor(
    name="admin", permissions=frozenset({"devices:read", "devices:write", "config:write"})
)


class Boom(Exception):
    """What the test raises to roll a transaction back."""


def _heard(database: Database) -> list[events.Event]:
    """Every event the database publishes from now on, each checked to be committed."""
    heard: list[events.Event] = []

    async def device_changed(event: DeviceChanged) -> None:
        async with database.session() as session:  # another session sees the change: committed
            assert await session.get(Device, event.device_id) is not None
        heard.append(event)

    async def config_changed(event: DesiredConfigChanged) -> None:
        heard.append(event)

    database.events.subscribe(DeviceChanged, device_changed)
    database.events.subscribe(DesiredConfigChanged, config_changed)
    return heard


async def test_a_registered_device_is_announced_after_the_commit(database: Database) -> None:
    heard = _heard(database)
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="press-07")
        assert heard == []  # not yet: the transaction is open
    assert heard == [DeviceChanged("press-07")]


async def test_a_rolled_back_change_announces_nothing(database: Database) -> None:
    heard = _heard(database)
    with pytest.raises(Boom):
        async with database.session() as session:
            await devices.create_device(session, actor=ADMIN, device_id="press-07")
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="press-07", changes={"interval_s": 2}
            )
            raise Boom
    async with database.session():
        pass  # a later transaction does not carry the undone events
    assert heard == []


async def test_each_change_is_announced_once_per_transaction(database: Database) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="press-07")
    heard = _heard(database)
    async with database.session() as session:
        await devices.update_device(session, actor=ADMIN, device_id="press-07", name="Press")
        await devices.update_device(session, actor=ADMIN, device_id="press-07", enabled=False)
        await devices.rotate_credentials(session, actor=ADMIN, device_id="press-07")
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="press-07", changes={"interval_s": 2}
        )
    assert heard == [DeviceChanged("press-07"), DesiredConfigChanged("press-07")]


async def test_a_configuration_left_as_it_was_is_not_announced(database: Database) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="press-07")
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="press-07", changes={"interval_s": 2}
        )
    heard = _heard(database)
    async with database.session() as session:
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="press-07", changes={"interval_s": 2}
        )
    assert heard == []


async def test_a_failing_subscriber_neither_undoes_the_change_nor_silences_the_others(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(event: DeviceChanged) -> None:
        raise RuntimeError("subscriber down")

    database.events.subscribe(DeviceChanged, broken)
    heard = _heard(database)
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="press-07")
    assert heard == [DeviceChanged("press-07")]
    assert "subscriber of DeviceChanged(device_id='press-07') failed" in caplog.text


async def test_an_unsubscribed_subscriber_hears_nothing_more(database: Database) -> None:
    heard: list[DeviceChanged] = []

    async def listen(event: DeviceChanged) -> None:
        heard.append(event)

    remove = database.events.subscribe(DeviceChanged, listen)
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="press-07")
    remove()
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="lathe-1")
    assert heard == [DeviceChanged("press-07")]
