"""Devices (stations): registration, credentials, edits, disabling, and when each was last heard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.db.models import Device
from core.errors import ConflictError, InvalidError, NotFoundError
from core.passwords import mosquitto_hash, new_device_secret, verify_mosquitto_hash
from core.protocol import topics
from core.services import audit, device_configs
from core.services.actor import Actor

# A device id is its broker username; the server's accounts must stay the server's: `server`,
# and `server-<n>` for each further replica (the broker binds client ids to usernames, so
# every replica needs an account of its own).
SERVER_ACCOUNT = "server"


def is_server_account(device_id: str) -> bool:
    """Whether ``device_id`` names one of the server's broker accounts (never a device's)."""
    return device_id == SERVER_ACCOUNT or device_id.startswith(f"{SERVER_ACCOUNT}-")


@dataclass(frozen=True)
class DeviceCredentials:
    """What a new device needs to connect; the password is shown once and never again."""

    device: Device
    username: str
    password: str


def _snapshot(device: Device) -> dict[str, Any]:
    return {
        "name": device.name,
        "description": device.description,
        "enabled": device.enabled,
    }


async def list_devices(session: AsyncSession, *, actor: Actor) -> list[Device]:
    """Every device, by id."""
    actor.require("devices:read")
    return list(await session.scalars(select(Device).order_by(Device.id)))


async def exists(session: AsyncSession, device_id: str) -> bool:
    """Whether a device of this id is registered (an id no device can have never is)."""
    if not topics.is_device_id(device_id):
        return False
    return await session.scalar(select(Device.id).where(Device.id == device_id)) is not None


async def enabled(session: AsyncSession, device_id: str) -> bool | None:
    """Whether the device may publish; None when there is no such device."""
    return await session.scalar(select(Device.enabled).where(Device.id == device_id))


async def opens(session: AsyncSession, device_id: str, password: str) -> bool | None:
    """Whether ``password`` still opens the device's broker account; None: no such device."""
    stored = await session.scalar(select(Device.mqtt_password_hash).where(Device.id == device_id))
    return None if stored is None else verify_mosquitto_hash(password, stored)


async def all_enabled(session: AsyncSession) -> dict[str, bool]:
    """Every device's id and whether it may publish, in one query."""
    return {
        device_id: on for device_id, on in await session.execute(select(Device.id, Device.enabled))
    }


async def broker_accounts(session: AsyncSession) -> dict[str, str]:
    """The enabled devices' broker usernames (their ids) and password hashes."""
    rows = await session.execute(
        select(Device.id, Device.mqtt_password_hash).where(Device.enabled.is_(True))
    )
    return {device_id: password_hash for device_id, password_hash in rows.all()}


async def counts(session: AsyncSession) -> tuple[int, int]:
    """How many devices are registered, and how many of them are enabled."""
    total = await session.scalar(select(func.count()).select_from(Device)) or 0
    on = await session.scalar(select(func.count()).select_from(Device).where(Device.enabled)) or 0
    return total, on


async def get_device(session: AsyncSession, *, actor: Actor, device_id: str) -> Device:
    """One device, or NotFoundError."""
    actor.require("devices:read")
    # An id no device can have is simply not found (and never reaches the database).
    device = await session.get(Device, device_id) if topics.is_device_id(device_id) else None
    if device is None:
        msg = f"no device with id '{device_id}'"
        raise NotFoundError(msg)
    return device


async def create_device(
    session: AsyncSession, *, actor: Actor, device_id: str, name: str = "", description: str = ""
) -> DeviceCredentials:
    """Register a device and make its MQTT credentials."""
    actor.require("devices:write")
    if not topics.is_device_id(device_id):
        msg = "A device id is 1 to 64 letters, digits, '_' or '-' (no spaces)"
        raise InvalidError(msg, field="id")
    if is_server_account(device_id):
        msg = f"'{device_id}' names a server's broker account ('server', 'server-…'), not a device"
        raise InvalidError(msg, field="id")
    if await session.get(Device, device_id) is not None:
        msg = f"a device with id '{device_id}' already exists"
        raise ConflictError(msg, field="id")
    password = new_device_secret()
    device = Device(
        id=device_id,
        name=name or device_id,
        description=description,
        mqtt_password_hash=mosquitto_hash(password),
    )
    session.add(device)
    await device_configs.create(session, device_id=device_id)
    await session.flush()
    await audit.record(
        session,
        actor=actor.name,
        action="device.create",
        target_type="device",
        target_id=device_id,
        after=_snapshot(device),
    )
    events.record(session, events.DeviceChanged(device_id))
    return DeviceCredentials(device=device, username=device_id, password=password)


async def update_device(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    name: str | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Device:
    """Rename, describe, disable or re-enable a device."""
    actor.require("devices:write")
    device = await get_device(session, actor=actor, device_id=device_id)
    before = _snapshot(device)
    if name is not None:
        device.name = name
    if description is not None:
        device.description = description
    if enabled is not None:
        device.enabled = enabled
    await session.flush()
    after = _snapshot(device)
    action = "device.update"
    if enabled is not None and before["enabled"] != enabled:
        action = "device.enable" if enabled else "device.disable"
    await audit.record(
        session,
        actor=actor.name,
        action=action,
        target_type="device",
        target_id=device_id,
        before=before,
        after=after,
    )
    events.record(session, events.DeviceChanged(device_id))
    return device


async def last_seen_at(session: AsyncSession, device_id: str) -> datetime | None:
    """When the device was last heard, as stored (None if never, or no such device)."""
    return await session.scalar(select(Device.last_seen_at).where(Device.id == device_id))


async def record_last_seen(session: AsyncSession, *, seen: Mapping[str, datetime]) -> set[str]:
    """Store when each device was last heard; returns the ids of the devices that exist.

    A stored time never moves back (another replica, or a late write, may be ahead).
    """
    known = set(await session.scalars(select(Device.id).where(Device.id.in_(list(seen)))))
    for device_id in sorted(known):  # one order for every writer: no deadlock between them
        at = seen[device_id]
        await session.execute(
            update(Device)
            .where(
                Device.id == device_id,
                or_(Device.last_seen_at.is_(None), Device.last_seen_at < at),
            )
            .values(last_seen_at=at)
        )
    return known


async def rotate_credentials(
    session: AsyncSession, *, actor: Actor, device_id: str
) -> DeviceCredentials:
    """Issue a new MQTT password; the old one stops working."""
    actor.require("devices:write")
    device = await get_device(session, actor=actor, device_id=device_id)
    password = new_device_secret()
    device.mqtt_password_hash = mosquitto_hash(password)
    await audit.record(
        session,
        actor=actor.name,
        action="device.rotate_credentials",
        target_type="device",
        target_id=device_id,
    )
    events.record(session, events.DeviceChanged(device_id))
    return DeviceCredentials(device=device, username=device_id, password=password)


async def names(session: AsyncSession, device_ids: Iterable[str]) -> dict[str, str]:
    """The name of each of these devices that is registered (blank when it has none)."""
    wanted = set(device_ids)
    if not wanted:
        return {}
    query = select(Device.id, Device.name).where(Device.id.in_(wanted))
    return {device_id: name for device_id, name in await session.execute(query)}


async def ids_named_like(session: AsyncSession, pattern: str, *, limit: int) -> list[str]:
    """Ids of at most ``limit`` devices whose name matches ``pattern`` (ILIKE, ``\\`` escapes)."""
    query = select(Device.id).where(Device.name.ilike(pattern, escape="\\")).limit(limit)
    return list(await session.scalars(query))
