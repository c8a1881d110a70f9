"""The audit log, as filtered, as CSV: times in UTC ISO 8601, names beside ids, changes in words.

The export is itself audited (``audit.export`` with its filters), in the caller's
transaction, before a row is read; it holds the entries before its own (the log as it stood
when asked), streamed a chunk at a time (``audit_search.chunks``), so memory does not grow
with the log.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import AuditEntry
from core.services import audit, audit_names
from core.services.actor import Actor
from core.services.audit_diff import change_lines
from core.services.audit_names import Key, Named
from core.services.audit_search import PERMISSION, AuditQuery, chunks

CSV_HEADER = (
    "id",
    "at",
    "actor",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "target_name",
    "change",
    "before",
    "after",
    "hash",
)


async def start_export(session: AsyncSession, *, actor: Actor, query: AuditQuery) -> int:
    """Check that ``actor`` may read the log, audit who exported which part of it, and return
    that entry's id: the export holds the entries before it."""
    actor.require(PERMISSION)
    entry = await audit.record(
        session, actor=actor.name, action="audit.export", after=query.described()
    )
    return entry.id


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _row(entry: AuditEntry, names: dict[Key, Named]) -> list[object]:
    who = audit_names.actor(names, entry)
    target = audit_names.target(names, entry)
    return [
        entry.id,
        _utc(entry.at),
        entry.actor,
        who.label if who.known else "",
        entry.action,
        entry.target_type,
        entry.target_id,
        target.label if target is not None and target.known else "",
        "; ".join(change_lines(entry.before, entry.after, _utc)),
        _json(entry.before),
        _json(entry.after),
        entry.hash,
    ]


async def csv_lines(
    database: Database, *, actor: Actor, query: AuditQuery, below: int | None = None
) -> AsyncIterator[str]:
    """The header, then one line per matching entry older than ``below``, newest first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    async for entries, session in chunks(database, actor=actor, query=query, below=below):
        names = await audit_names.resolve(session, entries)
        for entry in entries:
            writer.writerow(_row(entry, names))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def export_filename(now: datetime) -> str:
    """``audit-20261130T1402Z.csv``: when it was taken, in UTC."""
    return f"audit-{now.astimezone(UTC):%Y%m%dT%H%MZ}.csv"
