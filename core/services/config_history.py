"""Configuration history: every desired configuration of a device, numbered, with its author.

The one module that reads and writes ``device_config_versions``. ``device_configs`` adds a
version each time the desired configuration changes (an edit, a rollback, an UpdateConfig
command, a change to many devices, or the withdrawal of a command that never arrived); the
history is only ever appended to, so who changed what and when stays readable.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import DeviceConfigVersion

Source = Literal["edit", "rollback", "command", "bulk", "withdrawn"]


async def add(
    session: AsyncSession,
    *,
    device_id: str,
    version: int,
    settings: dict[str, Any],
    changed_by: str,
    source: Source,
    note: str = "",
    command_id: uuid.UUID | None = None,
) -> DeviceConfigVersion:
    """Record ``version`` of the device's desired configuration."""
    entry = DeviceConfigVersion(
        device_id=device_id,
        version=version,
        settings=dict(settings),
        changed_by=changed_by[:128],
        changed_at=datetime.now(UTC),
        source=source,
        note=note[:512],
        command_id=command_id,
    )
    session.add(entry)
    return entry


async def get(session: AsyncSession, *, device_id: str, version: int) -> DeviceConfigVersion | None:
    """One version of the device's configuration, if it exists."""
    return await session.get(DeviceConfigVersion, (device_id, version))


async def versions(
    session: AsyncSession, *, device_id: str, limit: int = 50, before: int | None = None
) -> list[DeviceConfigVersion]:
    """The device's versions, newest first (``before``: only older than that version)."""
    query = select(DeviceConfigVersion).where(DeviceConfigVersion.device_id == device_id)
    if before is not None:
        query = query.where(DeviceConfigVersion.version < before)
    query = query.order_by(DeviceConfigVersion.version.desc()).limit(limit)
    return list(await session.scalars(query))
