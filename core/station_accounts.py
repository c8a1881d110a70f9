"""Stations registered from the command line, their MQTT passwords kept in a JSON file.

For a deployment's init job: run it again and again, and it changes nothing that works.
A station missing from the database is registered; one whose stored password no longer
opens its account (re-keyed on the Devices page, a lost file) gets a new password; one
whose password opens it is left alone, so a second run writes no audit entry and leaves
the file as it was. Disabled stations stay disabled. The file is a JSON object of device
id → password (what ``precisionpulse simulate --credentials`` reads), written 0600 and
atomically; entries for other stations in it are kept.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.db.engine import Database
from core.services import devices
from core.services.actor import Actor

# Who the audit log says registered them: the deployment's own provisioning, at the console.
PROVISIONING = Actor(name="provisioning", permissions=frozenset({"devices:read", "devices:write"}))
NEW_FILE_MODE = 0o600  # it holds broker passwords


@dataclass(frozen=True)
class Provisioned:
    """What a run did, station by station."""

    registered: tuple[str, ...] = ()
    rekeyed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()  # of any of the above: registered, but not let on


def numbered_ids(prefix: str, count: int) -> list[str]:
    """``<prefix>-001``…: the ids ``precisionpulse simulate`` gives its stations."""
    if count < 1:
        msg = f"the number of stations must be positive: {count}"
        raise ValueError(msg)
    width = max(3, len(str(count)))  # as desktop.agent.fleet.new_credentials numbers them
    return [f"{prefix}-{n:0{width}d}" for n in range(1, count + 1)]


def read_credentials(path: Path) -> dict[str, str]:
    """Device id → password from ``path``; empty when there is no file yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        msg = f"cannot read credentials from {path}: {error}"
        raise ValueError(msg) from error
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        msg = f"{path} must hold a JSON object of device id → password"
        raise ValueError(msg)
    return data


def write_credentials(path: Path, credentials: dict[str, str]) -> None:
    """Replace ``path`` with ``credentials`` in one step, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
    with os.fdopen(fd, "w") as file:
        json.dump(credentials, file, indent=1, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def station_name(device_id: str) -> str:
    """The name a station registered here is listed under: ``station <id>``."""
    return f"station {device_id}"


async def ensure_stations(
    database: Database,
    ids: list[str],
    path: Path,
    *,
    actor: Actor = PROVISIONING,
    name: Callable[[str], str] = station_name,
) -> Provisioned:
    """Register or re-key the stations ``ids`` as needed; keep their passwords in ``path``.

    ``actor`` is who the audit log says did it; ``name`` names a station it registers.
    """
    stored = await asyncio.to_thread(read_credentials, path)
    registered, rekeyed, kept, disabled = [], [], [], []
    async with database.session() as session:
        for device_id in ids:
            opens = await devices.opens(session, device_id, stored.get(device_id, ""))
            if opens is None:
                made = await devices.create_device(
                    session, actor=actor, device_id=device_id, name=name(device_id)
                )
                stored[device_id] = made.password
                registered.append(device_id)
            elif not opens:
                made = await devices.rotate_credentials(session, actor=actor, device_id=device_id)
                stored[device_id] = made.password
                rekeyed.append(device_id)
            else:
                kept.append(device_id)
            if not await devices.enabled(session, device_id):
                disabled.append(device_id)
        if registered or rekeyed:  # all kept: their passwords came from the file as it is
            # Written before the commit: a password the database holds but no file does
            # would lock the station out until the next run re-keys it.
            await asyncio.to_thread(write_credentials, path, stored)
    return Provisioned(tuple(registered), tuple(rekeyed), tuple(kept), tuple(disabled))
