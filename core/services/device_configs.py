"""Device configurations: what is asked of each station (desired) and what it runs (reported).

The one module that reads and writes the ``device_configs`` table. Admins change the desired
side (a new version, audited, announced after the commit so the backbone publishes it
signed); stations report the applied side over MQTT, stored here and audited when it changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events, hlc
from core.db.models import DeviceConfig
from core.errors import ConflictError, InvalidError, NotFoundError
from core.protocol.station_config import ConfigError, ConfigReport, DesiredConfig, check_settings
from core.services import audit, config_history
from core.services.actor import Actor


async def create(session: AsyncSession, *, device_id: str) -> None:
    """The empty configuration of a newly registered device (nothing asked, nothing reported)."""
    session.add(DeviceConfig(device_id=device_id, updated_at=hlc.now()))


async def channel_units(session: AsyncSession, *, actor: Actor, device_id: str) -> dict[str, str]:
    """Units by channel, from the device's configuration (``{"units": {"temp": "°C"}}``).

    What the station reports it applied wins over what was asked of it; anything that is not
    a name → text mapping is ignored, since configurations are written by hand too.
    """
    actor.require("devices:read")
    config = await session.get(DeviceConfig, device_id)
    return {} if config is None else _units(config.desired, config.reported)


async def units_by_device(session: AsyncSession, *, actor: Actor) -> dict[str, dict[str, str]]:
    """Every device's units by channel, as ``channel_units`` reads them, in one query."""
    actor.require("devices:read")
    rows = await session.execute(
        select(DeviceConfig.device_id, DeviceConfig.desired, DeviceConfig.reported)
    )
    return {device_id: _units(desired, reported) for device_id, desired, reported in rows}


def _units(desired: object, reported: object) -> dict[str, str]:
    """The units of a configuration pair: the reported side's win."""
    units: dict[str, str] = {}
    for source in (desired, reported):
        given = source.get("units") if isinstance(source, dict) else None
        if isinstance(given, dict):
            units.update({k: v for k, v in given.items() if isinstance(v, str) and v})
    return units


async def reported_versions(session: AsyncSession, *, device_ids: Iterable[str]) -> dict[str, int]:
    """The version each of these devices last said it runs (0: none yet), in one query."""
    wanted = set(device_ids)
    if not wanted:
        return {}
    query = select(DeviceConfig.device_id, DeviceConfig.reported_version).where(
        DeviceConfig.device_id.in_(wanted)
    )
    return {device_id: version for device_id, version in await session.execute(query)}


async def get(session: AsyncSession, *, actor: Actor, device_id: str) -> DeviceConfig:
    """The device's desired configuration and what it last reported."""
    actor.require("devices:read")
    config = await session.get(DeviceConfig, device_id)
    if config is None:
        msg = f"no device with id '{device_id}'"
        raise NotFoundError(msg)
    return config


async def update_desired(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    changes: Mapping[str, Any],
    expected_version: int | None = None,
    source: config_history.Source = "edit",
    note: str = "",
    command_id: uuid.UUID | None = None,
) -> DeviceConfig:
    """Change settings of the device's desired configuration (``None`` removes one).

    The result must be a configuration a station can run (``check_settings``), or nothing
    changes and ``InvalidError`` says why. ``expected_version``, when given, is the version
    the editor saw: if another change came first, ``ConflictError`` and nothing changes.
    Each change is a new version in the history, audited, and announced
    (``DesiredConfigChanged``) once the transaction has committed. A change that changes
    nothing makes no version.
    """
    actor.require("config:write")
    config = await _locked(session, device_id, expected_version)
    merged = {**config.desired, **changes}
    desired = _checked({k: v for k, v in merged.items() if v is not None})
    if desired != config.desired:
        await _new_version(session, actor, config, desired, source, note, command_id)
    return config


async def rollback(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    to_version: int,
    expected_version: int | None = None,
) -> DeviceConfig:
    """Ask for an old version's settings again, as a new version (source ``rollback``).

    The history only grows: rolling back to version 3 from version 5 makes version 6, equal
    to version 3. ``NotFoundError`` for a version not in the history; ``ConflictError`` when
    ``expected_version`` is stale; ``InvalidError`` (field ``version``) when the desired
    configuration already equals that version's, since a rollback that makes no version
    would look to the person as if it had been lost.
    """
    actor.require("config:write")
    config = await _locked(session, device_id, expected_version)
    old = await config_history.get(session, device_id=device_id, version=to_version)
    if old is None:
        msg = f"device '{device_id}' has no configuration version {to_version}"
        raise NotFoundError(msg, field="version")
    desired = _checked(old.settings)
    if desired == config.desired:
        msg = (
            f"version {config.desired_version} already asks for the settings of version "
            f"{to_version}: nothing to roll back"
        )
        raise InvalidError(msg, field="version")
    note = f"rollback to v{to_version}"
    await _new_version(session, actor, config, desired, "rollback", note, None)
    return config


async def history(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    limit: int = 50,
    before: int | None = None,
) -> list[config_history.Entry]:
    """The device's desired configurations, newest first, each with what it changed."""
    await get(session, actor=actor, device_id=device_id)  # devices:read, and a 404
    return await config_history.entries(session, device_id=device_id, limit=limit, before=before)


async def version(
    session: AsyncSession, *, actor: Actor, device_id: str, version: int
) -> config_history.Entry:
    """One version of the device's desired configuration, with what it changed."""
    await get(session, actor=actor, device_id=device_id)
    found = await config_history.entry(session, device_id=device_id, version=version)
    if found is None:
        msg = f"device '{device_id}' has no configuration version {version}"
        raise NotFoundError(msg, field="version")
    return found


async def drift(
    session: AsyncSession, *, actor: Actor, config: DeviceConfig
) -> config_history.Drift | None:
    """Whether the station runs another version than asked, and since when (None: it does)."""
    actor.require("devices:read")
    return await config_history.drift(
        session,
        device_id=config.device_id,
        desired_version=config.desired_version,
        reported_version=config.reported_version,
    )


def _checked(settings: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return check_settings(settings)
    except ConfigError as error:
        raise InvalidError(str(error)) from error


async def _new_version(
    session: AsyncSession,
    actor: Actor,
    config: DeviceConfig,
    desired: dict[str, Any],
    source: config_history.Source,
    note: str,
    command_id: uuid.UUID | None,
) -> None:
    """Make ``desired`` the next version: recorded in the history, audited, announced."""
    before = dict(config.desired)
    config.desired = desired  # a new dict: the JSON change is tracked
    config.desired_version += 1
    config.updated_at = hlc.now()
    await config_history.add(
        session,
        device_id=config.device_id,
        version=config.desired_version,
        settings=desired,
        changed_by=actor.name,
        source=source,
        note=note,
        command_id=command_id,
    )
    await audit.record(
        session,
        actor=actor.name,
        action="device.config",
        target_type="device",
        target_id=config.device_id,
        before={**before, "version": config.desired_version - 1},
        after={**desired, "version": config.desired_version, "source": source},
    )
    await session.flush()
    events.record(session, events.DesiredConfigChanged(config.device_id))


async def _locked(
    session: AsyncSession, device_id: str, expected_version: int | None
) -> DeviceConfig:
    """The device's configuration row, locked until the transaction ends (PostgreSQL).

    Two editors of one device take turns: the second reads the first's version, so
    ``expected_version`` (the version the editor saw; None: whatever is current) and the
    version numbers hold under concurrency.
    """
    config = await session.scalar(
        select(DeviceConfig)
        .where(DeviceConfig.device_id == device_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if config is None:
        msg = f"no device with id '{device_id}'"
        raise NotFoundError(msg)
    if expected_version is not None and expected_version != config.desired_version:
        msg = (
            f"the configuration changed since you read it: version {config.desired_version} "
            f"is current, you edited version {expected_version}"
        )
        raise ConflictError(msg, field="version")
    return config


async def desired(session: AsyncSession, *, device_id: str) -> DesiredConfig | None:
    """The device's desired configuration to publish, or None before its first change."""
    config = await session.get(DeviceConfig, device_id)
    if config is None or config.desired_version == 0:
        return None
    return DesiredConfig(device_id, config.desired_version, dict(config.desired))


async def all_desired(session: AsyncSession) -> list[DesiredConfig]:
    """Every device's desired configuration that has been changed at least once."""
    configs = await session.scalars(select(DeviceConfig).where(DeviceConfig.desired_version > 0))
    return [DesiredConfig(c.device_id, c.desired_version, dict(c.desired)) for c in configs]


async def record_report(session: AsyncSession, *, report: ConfigReport, news: bool) -> bool:
    """Store what a station reports running, and what became of its versions; False if no
    such device.

    Audited when the reported settings change, and when a rejection is ``news`` (not the
    retained copy the broker hands over again on each connect).
    """
    config = await session.get(DeviceConfig, report.device_id)
    if config is None:
        return False
    before = {"version": config.reported_version, **config.reported}
    changed = (config.reported_version, config.reported) != (report.version, report.settings)
    await config_history.record_outcome(
        session, report=report, previously_running=config.reported_version
    )
    config.reported, config.reported_version = dict(report.settings), report.version
    config.reported_at = datetime.now(UTC)
    if changed or (news and report.outcome == "rejected"):
        await audit.record(
            session,
            actor=f"device:{report.device_id}",
            action=f"device.config.{report.outcome}",
            target_type="device",
            target_id=report.device_id,
            before=before,
            after={
                "version": report.version,
                **report.settings,
                "desired_version": report.desired_version,
                "detail": report.detail,
            },
        )
    return True
