"""Names for the ids an audit page shows: users, roles, devices, commands, in bulk.

The log keeps ids (a rename must not rewrite history); a person reads names. A page of
entries is resolved with one query per kind of target, never one per row. An id that no
longer resolves (a command refused before it existed) keeps a short form of itself, and a
deleted user or role says so. The lookups are the owners' (users, roles, devices,
commands); this module only turns what they find into labels.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuditEntry
from core.services import commands, devices, roles, users

DEVICE_ACTOR = "device:"  # how the services name a station acting on its own
SHORT = 8  # characters of an unresolved id: enough to tell entries apart, not a wall of hex
NAME_MATCHES = 200  # ids a search by name may add per kind: a search, not a listing


@dataclass(frozen=True)
class Named:
    """What an id stands for: its kind (``user``, ``device``…), the id, and a label."""

    kind: str
    key: str
    label: str
    known: bool = True


Key = tuple[str, str]  # (kind, id) as the log writes them


def unresolved(kind: str, key: str) -> Named:
    """An id with nothing to name it: its kind and a short form (all of it when short)."""
    short = key if len(key) <= SHORT + 4 else f"{key[:SHORT]}…"
    label = f"{kind} {short}".strip() if kind else short
    return Named(kind, key, label, known=False)


def _uuids(keys: Iterable[str]) -> list[uuid.UUID]:
    found = []
    for key in keys:
        try:
            found.append(uuid.UUID(key))
        except ValueError:
            continue
    return found


def _deleted(name: str, deleted: bool) -> str:
    return f"{name} (deleted)" if deleted else name


async def _users(session: AsyncSession, *, ids: set[str], names: set[str]) -> dict[Key, Named]:
    found: dict[Key, Named] = {}
    for user_id, (username, deleted) in (
        await users.by_ids_or_usernames(session, ids=_uuids(ids), usernames=names)
    ).items():
        named = Named("user", str(user_id), _deleted(username, deleted))
        found["user", str(user_id)] = named
        found["actor", username] = named
    return found


async def _roles(session: AsyncSession, ids: set[str]) -> dict[Key, Named]:
    return {
        ("role", str(role_id)): Named("role", str(role_id), _deleted(name, deleted))
        for role_id, (name, deleted) in (await roles.names(session, role_ids=_uuids(ids))).items()
    }


async def _devices(session: AsyncSession, ids: set[str]) -> dict[Key, Named]:
    return {
        ("device", device_id): Named(
            "device",
            device_id,
            f"{name} ({device_id})" if name and name != device_id else device_id,
        )
        for device_id, name in (await devices.names(session, ids)).items()
    }


async def _commands(session: AsyncSession, ids: set[str]) -> dict[Key, Named]:
    return {
        ("command", str(command_id)): Named("command", device_id, f"{kind} to {device_id}")
        for command_id, (kind, device_id) in (
            await commands.kinds_and_devices(session, _uuids(ids))
        ).items()
    }


async def resolve(session: AsyncSession, entries: Iterable[AuditEntry]) -> dict[Key, Named]:
    """Names for the entries' targets (``(type, id)``) and actors (``("actor", name)``).

    A command's ``key`` is the device it was sent to (where its state shows).
    """
    wanted: dict[str, set[str]] = {"user": set(), "role": set(), "device": set(), "command": set()}
    usernames: set[str] = set()
    for entry in entries:
        if entry.target_type in wanted and entry.target_id:
            wanted[entry.target_type].add(entry.target_id)
        if entry.actor.startswith(DEVICE_ACTOR):
            wanted["device"].add(entry.actor.removeprefix(DEVICE_ACTOR))
        else:
            usernames.add(entry.actor)
    found = await _users(session, ids=wanted["user"], names=usernames)
    found |= await _roles(session, wanted["role"])
    found |= await _devices(session, wanted["device"])
    found |= await _commands(session, wanted["command"])
    for device_key in wanted["device"]:
        if ("device", device_key) in found:
            found["actor", DEVICE_ACTOR + device_key] = found["device", device_key]
    return found


def target(names: dict[Key, Named], entry: AuditEntry) -> Named | None:
    """The entry's target by name (None when the entry has none)."""
    if not entry.target_type and not entry.target_id:
        return None
    known = names.get((entry.target_type, entry.target_id))
    return known or unresolved(entry.target_type, entry.target_id)


def actor(names: dict[Key, Named], entry: AuditEntry) -> Named:
    """Who acted: a user or a device by name, else the name the log keeps (``system``)."""
    return names.get(("actor", entry.actor)) or Named("", entry.actor, entry.actor, known=False)


async def ids_named(session: AsyncSession, text: str) -> list[str]:
    """Ids of users, roles and devices whose names contain ``text`` (for a search by name)."""
    pattern = f"%{escape_like(text)}%"
    found = [str(i) for i in await users.ids_named_like(session, pattern, limit=NAME_MATCHES)]
    found += [str(i) for i in await roles.ids_named_like(session, pattern, limit=NAME_MATCHES)]
    return found + await devices.ids_named_like(session, pattern, limit=NAME_MATCHES)


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards taken literally (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def one(session: AsyncSession, kind: str, key: str) -> Named:
    """What one target id stands for (as ``target`` would name it in an entry)."""
    probe = AuditEntry(actor="", target_type=kind, target_id=key)
    return target(await resolve(session, [probe]), probe) or unresolved(kind, key)
