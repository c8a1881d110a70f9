"""Units by channel come from the device's configuration; setting them is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, DeviceConfig
from core.errors import ForbiddenError, InvalidError, NotFoundError
from core.services import device_configs, devices
from core.services.actor import Actor

ADMIN = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))
READER = Actor(name="vic", permissions=frozenset({"devices:read"}))


async def test_units_are_set_audited_and_read_back(database: Database) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-1")
        assert await device_configs.channel_units(session, actor=READER, device_id="kiln-1") == {}
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="kiln-1", changes={"units": {"temp": "°C"}}
        )
    async with database.session() as session:
        assert await device_configs.channel_units(session, actor=READER, device_id="kiln-1") == {
            "temp": "°C"
        }
        config = await session.get(DeviceConfig, "kiln-1")
        assert config is not None and config.desired_version == 1
        entry = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "device.config"))
        ).one()
        assert (entry.actor, entry.target_id) == ("ada", "kiln-1")


async def test_what_the_station_reports_wins_and_junk_is_ignored(database: Database) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-1")
        config = await session.get(DeviceConfig, "kiln-1")
        assert config is not None
        config.desired = {"units": {"temp": "°C", "parts": "pcs", "bad": 3}}
        config.reported = {"units": {"temp": "K"}}
    async with database.session() as session:
        assert await device_configs.channel_units(session, actor=READER, device_id="kiln-1") == {
            "temp": "K",
            "parts": "pcs",
        }


async def test_setting_units_needs_config_write_and_a_device(database: Database) -> None:
    async with database.session() as session:
        with pytest.raises(ForbiddenError):
            await device_configs.update_desired(session, actor=READER, device_id="x", changes={})
        with pytest.raises(NotFoundError):
            await device_configs.update_desired(session, actor=ADMIN, device_id="nope", changes={})


async def test_a_config_change_is_checked_merged_and_versioned(database: Database) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-1")
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="kiln-1", changes={"interval_s": 2, "heartbeat_s": 5}
        )
        with pytest.raises(InvalidError, match=r"interval_s must be 0\.05-3600 s"):
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="kiln-1", changes={"interval_s": 0}
            )
        with pytest.raises(InvalidError, match="unknown setting"):
            await device_configs.update_desired(
                session, actor=ADMIN, device_id="kiln-1", changes={"rate": 3}
            )
        # None removes a setting; a change that changes nothing is no new version.
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="kiln-1", changes={"heartbeat_s": None}
        )
        config = await device_configs.update_desired(
            session, actor=ADMIN, device_id="kiln-1", changes={"interval_s": 2.0}
        )
        assert (config.desired, config.desired_version) == ({"interval_s": 2.0}, 2)
        entries = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "device.config")
        )
        assert [e.after for e in entries] == [
            {"interval_s": 2.0, "heartbeat_s": 5, "version": 1, "source": "edit"},
            {"interval_s": 2.0, "version": 2, "source": "edit"},
        ]
