"""The audit report: the audit log narrowed by actor, action, target and time, as a table.

Rows oldest first, with names beside ids and each change in words, as the audit log's own
CSV export shows them (``audit_names``, ``audit_diff``). It needs ``audit:read`` besides
``reports:read``: a report is no way round the log's own permission. At most ``MAX_ROWS``
entries: more is refused with a 422 giving the count, rather than a table silently cut
short (a CSV carries no note that it is partial); the log's own export streams any number.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuditEntry
from core.errors import InvalidError
from core.services import audit_names, audit_search
from core.services.actor import Actor
from core.services.audit_diff import change_lines
from core.services.audit_search import AuditQuery
from core.services.reports import Column, Table, Value, require, span

NAME = "audit"
READS = audit_search.PERMISSION
# Entries in one report, all read into memory: a busy fleet's week stays well below it, and
# a table longer than this is searched, not read; /api/v1/audit.csv streams any number.
MAX_ROWS = 10_000

COLUMNS = (
    Column("id", "Entry"),
    Column("at", "At"),
    Column("actor", "Actor"),
    Column("actor_name", "Actor name"),
    Column("action", "Action"),
    Column("target_type", "Target kind"),
    Column("target_id", "Target"),
    Column("target_name", "Target name"),
    Column("change", "Change"),
)


async def audit_report(
    session: AsyncSession,
    *,
    actor: Actor,
    query: AuditQuery,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Table:
    """The entries matching ``query``'s actor, action and target in [``since``, ``until``)
    (``span.asked``: the week up to now unless asked, a year at most); ``query``'s own time
    range and text are not used.

    ``query.action`` matches the action and its family (``device`` matches ``device.create``).
    """
    require(actor, READS)
    asked = span.asked(start=since, end=until, now=datetime.now(UTC))
    narrowed = AuditQuery(
        actor=query.actor,
        action=query.action,
        target_type=query.target_type,
        target_id=query.target_id,
        since=asked.start,
        until=asked.end,
    )
    page = await audit_search.oldest_first(session, actor=actor, query=narrowed, limit=MAX_ROWS)
    if page.total > MAX_ROWS:
        msg = (
            f"{page.total} entries match, a report holds at most {MAX_ROWS}: narrow the "
            "period, actor, action or target, or export them all from /api/v1/audit.csv"
        )
        raise InvalidError(msg, field="from")
    names = await audit_names.resolve(session, page.entries)
    rows = tuple(_row(entry, names) for entry in page.entries)
    filters = {
        "actor": query.actor or "any",
        "action": query.action or "any",
        "target_type": query.target_type or "any",
        "target_id": query.target_id or "any",
        **asked.filters(),
    }
    return Table(NAME, "Audit log", COLUMNS, rows, filters)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _row(entry: AuditEntry, names: dict[audit_names.Key, audit_names.Named]) -> dict[str, Value]:
    who = audit_names.actor(names, entry)
    target = audit_names.target(names, entry)
    return {
        "id": entry.id,
        "at": entry.at.astimezone(UTC),
        "actor": entry.actor,
        "actor_name": who.label if who.known else "",
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_name": target.label if target is not None and target.known else "",
        "change": "; ".join(change_lines(entry.before, entry.after, _utc)),
    }
