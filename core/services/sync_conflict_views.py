"""The conflict log as people read it: each row named, its field in words, who made each
value where and when, and never a password hash.

Names are resolved through the users and roles services (deleted ones too: a conflict may
outlive its row); who made the kept value comes from the change log, where it was made
from the stamp's node when the log has no such change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import hlc
from core.db.models import SyncConflict
from core.services import roles, sync_conflicts, sync_log, users
from core.services.actor import Actor
from core.sync import words


@dataclass(frozen=True)
class Side:
    """One of the two values of a conflict: the value kept or the value lost."""

    value: Any  # as stored, but a password hash reads "password changed"
    shown: str  # in words
    stamp: str
    at: datetime | None  # the stamp's wall time (None: not a stamp)
    origin: str  # "server" or the device id it was made at
    actor: str  # who made it ("" when nobody is on record)


@dataclass(frozen=True)
class ConflictView:
    """One logged conflict, readable."""

    id: int
    at: datetime  # when the server noticed it
    device_id: str | None  # the station whose edit it involved
    entity: str
    key: str
    field: str
    subject: str  # "User olga"
    field_label: str  # "display name"
    kept: Side
    lost: Side


def _at(stamp: str) -> datetime | None:
    try:
        return hlc.wall_time(stamp)
    except ValueError:
        return None


def _node(stamp: str) -> str:
    try:
        return hlc.Stamp.parse(stamp).node
    except ValueError:
        return ""


async def _names(session: AsyncSession, rows: Iterable[SyncConflict]) -> words.Names:
    wanted: dict[str, set[uuid.UUID]] = {"user": set(), "role": set(), "permission": set()}
    for row in rows:
        for kind, ident in words.key_ids(row.entity, row.key):
            wanted[kind].add(ident)
    found = await users.usernames(session, wanted["user"])
    return found | await roles.names(
        session, role_ids=wanted["role"], permission_ids=wanted["permission"]
    )


def _side(row: SyncConflict, value: Any, stamp: str, origin: str, actor: str) -> Side:
    return Side(
        value=words.safe_value(row.entity, row.field, value),
        shown=words.value_words(row.entity, row.field, value),
        stamp=stamp,
        at=_at(stamp),
        origin=origin,
        actor=actor,
    )


async def views(
    session: AsyncSession, *, actor: Actor, limit: int = 200, device_id: str | None = None
) -> list[ConflictView]:
    """The newest conflicts first, readable (of one station's edits when ``device_id`` is given)."""
    rows = await sync_conflicts.recent(session, actor=actor, limit=limit, device_id=device_id)
    names = await _names(session, rows)
    made = await sync_log.authors(session, ((r.entity, r.key, r.field, r.kept_stamp) for r in rows))
    found: list[ConflictView] = []
    for row in rows:
        author = made.get((row.entity, row.key, row.field, row.kept_stamp))
        kept_origin = author.origin if author else _node(row.kept_stamp)
        found.append(
            ConflictView(
                id=row.id,
                at=row.at,
                device_id=row.device_id,
                entity=row.entity,
                key=row.key,
                field=row.field,
                subject=words.subject(row.entity, row.key, names),
                field_label=words.field_words(row.entity, row.field),
                kept=_side(
                    row, row.kept_value, row.kept_stamp, kept_origin, author.actor if author else ""
                ),
                lost=_side(row, row.lost_value, row.lost_stamp, row.lost_origin, row.lost_actor),
            )
        )
    return found
