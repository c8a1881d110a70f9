"""What a bench's server finds in its database before it starts: the roles, an Admin, devices.

Written straight into the database before the server runs, the Admin as the shell makes one.
The caller opens the database with the server's audit key
(``core.services.audit_checkpoints.keyed_database``), so the audit entries left here are
keyed as the server's own and it does not report them as forged.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Device
from core.passwords import mosquitto_hash
from core.services import device_configs, roles, users


async def admin_and_devices(
    session: AsyncSession,
    admin: tuple[str, str],
    devices: Mapping[str, str],
    *,
    configs: bool = False,
) -> None:
    """The built-in roles, the Admin ``admin`` (username, password), and ``devices``.

    ``devices`` maps a device id to its MQTT password. With ``configs`` each device also gets
    its empty configuration row, which sending it an UpdateConfig needs.
    """
    await roles.ensure_builtins(session)
    await users.bootstrap_user(session, username=admin[0], password=admin[1], roles=["Admin"])
    for device_id, password in devices.items():
        session.add(Device(id=device_id, mqtt_password_hash=mosquitto_hash(password)))
        if configs:
            await device_configs.create(session, device_id=device_id)
