"""The configuration-changes report: each version asked of a station, its author, diff, outcome.

A row per version whose ``changed_at`` lies in [from, to), of one device or all, oldest
first. ``changes`` is the diff against the version before, in words (``—`` for a version
older than the history); ``outcome`` is what the station said of it (applied, rejected with
its reason, superseded by a later one it went straight to), ``pending`` while it has not
reached that version, and ``unknown`` for a version it passed before migration 0010 began
keeping outcomes (``config_history.shown_outcome``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidError
from core.services import config_history, device_configs, devices
from core.services.actor import Actor
from core.services.reports import Column, Table, Value, require, span

NAME = "config-changes"
READS = "devices:read"  # what the report shows: devices' configurations
# Rows in one report: a year of edits of a large fleet fits; past it a report is no longer
# read but searched, so the caller narrows the period or the device instead (a 422 saying so).
MAX_ROWS = 10_000
NO_HISTORY = "—"  # the changes of a version older than the history: nothing to compare with

COLUMNS = (
    Column("device_id", "Device"),
    Column("device_name", "Name"),
    Column("version", "Version"),
    Column("changed_at", "Changed at"),
    Column("changed_by", "Changed by"),
    Column("source", "Source"),
    Column("note", "Note"),
    Column("changes", "Changes"),
    Column("outcome", "Outcome"),
    Column("outcome_at", "Outcome at"),
    Column("outcome_detail", "Outcome detail"),
)


async def config_changes(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Table:
    """The configuration versions made in [``since``, ``until``) (``span.asked``: the week up
    to now unless asked, a year at most)."""
    require(actor, READS)
    asked = span.asked(start=since, end=until, now=datetime.now(UTC))
    device = "all"
    if device_id is not None:
        found = await devices.get_device(session, actor=actor, device_id=device_id)
        device = f"{found.id} ({found.name})" if found.name else found.id
    entries = await config_history.between(
        session, since=asked.start, until=asked.end, device_id=device_id, limit=MAX_ROWS + 1
    )
    if len(entries) > MAX_ROWS:
        msg = f"more than {MAX_ROWS} versions match: choose a shorter period or one device"
        raise InvalidError(msg, field="from")
    ids = {e.device_id for e in entries}
    names = await devices.names(session, ids)
    running = await device_configs.reported_versions(session, device_ids=ids)
    rows = tuple(_row(e, names.get(e.device_id, ""), running.get(e.device_id, 0)) for e in entries)
    filters = {"device": device, **asked.filters()}
    return Table(NAME, "Configuration changes", COLUMNS, rows, filters)


def _row(entry: config_history.Entry, name: str, running: int) -> dict[str, Value]:
    known = entry.changes
    changes = NO_HISTORY if known is None else "; ".join(c.text for c in known)
    return {
        "device_id": entry.device_id,
        "device_name": name,
        "version": entry.version,
        "changed_at": entry.changed_at.astimezone(UTC),
        "changed_by": entry.changed_by,
        "source": entry.source,
        "note": entry.note,
        "changes": changes,
        "outcome": config_history.shown_outcome(entry, running=running),
        "outcome_at": None if entry.outcome_at is None else entry.outcome_at.astimezone(UTC),
        "outcome_detail": entry.outcome_detail,
    }
