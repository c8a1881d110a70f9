"""Withdrawing an ``UpdateConfig`` that never reached its station.

An ``UpdateConfig`` command makes the device's next desired configuration version, and the
server publishes that version retained: a station that comes back would apply it, though the
command says (``expired``, ``canceled``) that it never arrived. So when such a command ends,
while its version is still the one asked for, the settings before it are asked for again as a
new version (source ``withdrawn``, its note naming the command). A later version (someone
changed the configuration since) is left alone: the command's detail says so.

The station may still answer that it applied the command after all (it accepted it late; see
core.services.commands). Then, while the withdrawal is still the version asked for, the
command's settings are asked for again (``reinstate``, source ``command``), so what is asked
for matches what the command says happened.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Command
from core.errors import ConflictError
from core.protocol import commands as protocol
from core.protocol.station_config import DesiredConfig
from core.services import config_history, device_configs
from core.services.actor import Actor

# The system withdraws, not the person who canceled (who may not hold config:write), and
# with no permission beyond that one.
WITHDRAWER = Actor(name="system", permissions=frozenset({"config:write"}))


async def withdraw(session: AsyncSession, command: Command) -> str:
    """Withdraw ``command``'s configuration version if it still stands; what to add to its
    detail ("" when the command made no version)."""
    version = command.config_version
    if command.kind != protocol.UPDATE_CONFIG or version is None:
        return ""
    device_id = command.device_id
    made = await config_history.get(session, device_id=device_id, version=version)
    if made is None or made.command_id != command.id:  # it changed nothing: nothing to undo
        return ""
    current = await device_configs.desired(session, device_id=device_id)
    if current is None or current.version != version:
        later = f"v{current.version}" if current else "a later version"
        return f"configuration v{version} kept: {later} came after it"
    settings: dict[str, Any] = {}
    if version > 1:
        before = await config_history.get(session, device_id=device_id, version=version - 1)
        if before is None:
            return f"configuration v{version} kept: v{version - 1} is not in the history"
        settings = dict(before.settings)
    again = await _ask_again(session, command, current, settings, source="withdrawn")
    if again is None:
        return f"configuration v{version} kept: a later version came after it"
    return f"configuration v{version} withdrawn: v{again} asks for v{version - 1}'s settings again"


async def reinstate(session: AsyncSession, command: Command) -> str:
    """Ask again for the version of an ``UpdateConfig`` the station applied after its
    withdrawal, if that withdrawal is still the version asked for; what to add to its detail."""
    version = command.config_version
    if command.kind != protocol.UPDATE_CONFIG or version is None:
        return ""
    device_id = command.device_id
    current = await device_configs.desired(session, device_id=device_id)
    if current is None or current.version <= version:
        return ""
    withdrawal = await config_history.get(session, device_id=device_id, version=current.version)
    if withdrawal is None or (withdrawal.source, withdrawal.command_id) != (
        "withdrawn",
        command.id,
    ):
        return ""  # never withdrawn, or someone asked for another configuration since
    made = await config_history.get(session, device_id=device_id, version=version)
    if made is None:
        return f"configuration v{version} not reinstated: it is not in the history"
    again = await _ask_again(session, command, current, dict(made.settings), source="command")
    if again is None:
        return f"configuration v{version} not reinstated: a later version came after it"
    return f"configuration v{version} reinstated: v{again} asks for its settings again"


async def _ask_again(
    session: AsyncSession,
    command: Command,
    current: DesiredConfig,
    settings: dict[str, Any],
    *,
    source: Literal["withdrawn", "command"],
) -> int | None:
    """Make ``settings`` the next desired version; None if ``current`` is no longer the one."""
    changes = {name: None for name in current.settings if name not in settings} | settings
    try:
        again = await device_configs.update_desired(
            session,
            actor=WITHDRAWER,
            device_id=command.device_id,
            changes=changes,
            expected_version=current.version,  # under the row's lock: nobody changed it since
            source=source,
            note=f"command {command.id} {command.state}",
            command_id=command.id,
        )
    except ConflictError:
        return None
    return again.desired_version
