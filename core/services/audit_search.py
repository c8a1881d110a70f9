"""Reading the audit log narrowed: by actor, action, target, time and free text, in pages.

Everything is decided in the database (the log grows without bound): a page is one
``LIMIT/OFFSET`` query and one count. An action filter matches the action and its family
(``device`` matches ``device.create`` and ``device.config.applied``). The free text matches
actor, action, target id and the recorded fields, case-insensitively, and also targets whose
*name* matches (a user's, a role's, a device's), which the log itself does not hold.
The conditions and the order are built here; the statements on the log, and writing it,
stay with ``core.services.audit``, as the names of users, roles and devices stay with theirs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from core.db.engine import Database
from core.db.models import AuditEntry
from core.errors import InvalidError
from core.services import audit
from core.services.actor import Actor
from core.services.audit_names import escape_like, ids_named

PERMISSION = "audit:read"
MAX_TEXT = 100  # characters of a search: longer is not a search a person types
MAX_PAGE = 1000  # rows a page: a browser or a script reads more with the next offset
CHUNK = 1000  # rows an export reads per round trip: memory bounded to one chunk
# Columns a page may be sorted by; ties (and "at") fall back to the id, the log's own order.
SORTS: dict[str, tuple[Any, ...]] = {
    "at": (AuditEntry.id,),
    "actor": (AuditEntry.actor,),
    "action": (AuditEntry.action,),
    "target": (AuditEntry.target_type, AuditEntry.target_id),
}


@dataclass(frozen=True)
class AuditQuery:
    """Which entries to read (None: any); ``since`` inclusive, ``until`` exclusive."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            msg = "the end of the time range must be later than its start"
            raise InvalidError(msg, field="until")
        if self.text is not None and len(self.text) > MAX_TEXT:
            msg = f"a search is at most {MAX_TEXT} characters"
            raise InvalidError(msg, field="q")

    def described(self) -> dict[str, str]:
        """The filters in use, as text (for the export's own audit entry)."""
        return {
            k: v.isoformat() if isinstance(v, datetime) else str(v)
            for k, v in asdict(self).items()
            if v not in (None, "")
        }


@dataclass(frozen=True)
class AuditPage:
    """One page of entries and how many match in all."""

    entries: list[AuditEntry]
    total: int


def _like(column: Any, pattern: str) -> ColumnElement[bool]:
    return column.ilike(pattern, escape="\\")


async def _where(session: AsyncSession, query: AuditQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.actor:
        where.append(AuditEntry.actor == query.actor)
    if query.action:
        family = f"{escape_like(query.action)}.%"
        where.append(or_(AuditEntry.action == query.action, _like(AuditEntry.action, family)))
    if query.target_type:
        where.append(AuditEntry.target_type == query.target_type)
    if query.target_id:
        where.append(AuditEntry.target_id == query.target_id)
    if query.since is not None:
        where.append(AuditEntry.at >= query.since)
    if query.until is not None:
        where.append(AuditEntry.at < query.until)
    text = (query.text or "").strip()
    if text:
        # The recorded fields are JSON text: a non-ASCII letter may be stored \u-escaped.
        spellings = {text, json.dumps(text)[1:-1]}
        # One text a row, matched once per spelling: a fifth of the work of five matches.
        # (``||``, which both databases have; a missing side is no text, not a NULL row.)
        haystack = (
            AuditEntry.actor
            + "\n"
            + AuditEntry.action
            + "\n"
            + AuditEntry.target_id
            + "\n"
            + func.coalesce(cast(AuditEntry.before, String), "")
            + "\n"
            + func.coalesce(cast(AuditEntry.after, String), "")
        )
        matches = [_like(haystack, f"%{escape_like(s)}%") for s in spellings]
        named = await ids_named(session, text)
        if named:
            matches.append(AuditEntry.target_id.in_(named))
        where.append(or_(*matches))
    return where


def _order(sort: str, descending: bool) -> list[ColumnElement[Any]]:
    columns = (*SORTS.get(sort, ()), AuditEntry.id)
    return [c.desc() if descending else c.asc() for c in columns]


async def search(
    session: AsyncSession,
    *,
    actor: Actor,
    query: AuditQuery,
    limit: int = 50,
    offset: int = 0,
    sort: str = "at",
    descending: bool = True,
) -> AuditPage:
    """The page of matching entries at ``offset`` (newest first by default), and the count."""
    actor.require(PERMISSION)
    rows, total = await audit.page(
        session,
        where=await _where(session, query),
        order=_order(sort, descending),
        limit=min(limit, MAX_PAGE),
        offset=offset,
    )
    return AuditPage(rows, total)


async def oldest_first(
    session: AsyncSession, *, actor: Actor, query: AuditQuery, limit: int
) -> AuditPage:
    """Up to ``limit`` matching entries, oldest first, and the count: for a report, whose own
    bound on its rows replaces a page's."""
    actor.require(PERMISSION)
    where = await _where(session, query)
    rows, total = await audit.page(
        session, where=where, order=_order("at", False), limit=limit, offset=0
    )
    return AuditPage(rows, total)


async def actions(session: AsyncSession, *, actor: Actor) -> list[str]:
    """Every action the log holds, sorted (from the action index, not the rows)."""
    actor.require(PERMISSION)
    return await audit.actions(session)


def families(known: list[str]) -> list[str]:
    """The action families among ``known`` (``device`` of ``device.create``), sorted."""
    return sorted({a.split(".", 1)[0] for a in known if "." in a})


async def chunks(
    database: Database, *, actor: Actor, query: AuditQuery, below: int | None = None
) -> AsyncIterator[tuple[list[AuditEntry], AsyncSession]]:
    """Every matching entry older than ``below`` (if given), newest first, a chunk at a time
    with the session that read it.

    Keyed on the id, so entries added meanwhile neither shift nor repeat a chunk.
    """
    actor.require(PERMISSION)
    while True:
        async with database.session() as session:
            where = await _where(session, query)
            rows = await audit.newest_below(session, where=where, below=below, limit=CHUNK)
            if not rows:
                return
            yield rows, session
        below = rows[-1].id
        if len(rows) < CHUNK:
            return


def as_query(params: Mapping[str, Any]) -> AuditQuery:
    """An ``AuditQuery`` from a mapping of its field names, blanks read as "any"."""
    fields = AuditQuery.__dataclass_fields__
    return AuditQuery(**{k: (v or None) for k, v in params.items() if k in fields})
