"""The configuration-changes report: each version asked of a station, its author, diff, outcome.

A row per version whose ``changed_at`` lies in [from, to), of one device or all, oldest
first. ``changes`` is the diff against the version before, in words (``—`` for a version
older than the history); ``outcome`` is what the station said of it (applied, rejected with
its reason, superseded by a later one it went straight to), ``pending`` while it has not
reached that version, and ``unknown`` for a version it passed before migration 0010 began
keeping outcomes (``config_history.shown_outcome``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidError
from core.services import config_history, device_configs, devices
from core.services.actor import Actor
from core.services.reports import Column, Table, Value, require

NAME = "config-changes"
READS = "devices:read"  # what the report shows: devices' configurations
DEFAULT_SPAN = timedelta(days=7)  # without a start: the week before the end, a working review
# Rows in one report: years of edits of a large fleet; past it a report is no longer read but
# searched, so the caller narrows the period or the device instead (a 422 saying so).
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


def period(
    since: datetime | None, until: datetime | None, *, default_span: timedelta | None
) -> tuple[datetime | None, datetime]:
    """[from, to): ``to`` defaults to now, ``from`` to ``default_span`` before it (None: open).

    Both must name their offset; a start not before the end is refused with a reason.
    """
    until = until or datetime.now(UTC)
    if since is None and default_span is not None:
        try:
            since = until - default_span
        except OverflowError:  # 'to' within the span of year 1
            msg = f"'to' ({words(until)}) leaves no {default_span.days} days before it: give 'from'"
            raise InvalidError(msg, field="from") from None
    if since is not None and since >= until:
        msg = f"'from' ({words(since)}) must be earlier than 'to' ({words(until)})"
        raise InvalidError(msg, field="from")
    return since, until


def words(moment: datetime | None) -> str:
    """A bound of the period as the filters show it: UTC ISO 8601, or "any"."""
    return "any" if moment is None else moment.astimezone(UTC).isoformat()


async def config_changes(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Table:
    """The configuration versions made in [``since``, ``until``) (default: the last week)."""
    require(actor, READS)
    start, end = period(since, until, default_span=DEFAULT_SPAN)
    assert start is not None  # a default span always gives a start
    device = "all"
    if device_id is not None:
        found = await devices.get_device(session, actor=actor, device_id=device_id)
        device = f"{found.id} ({found.name})" if found.name else found.id
    entries = await config_history.between(
        session, since=start, until=end, device_id=device_id, limit=MAX_ROWS + 1
    )
    if len(entries) > MAX_ROWS:
        msg = f"more than {MAX_ROWS} versions match: choose a shorter period or one device"
        raise InvalidError(msg, field="from")
    ids = {e.device_id for e in entries}
    names = await devices.names(session, ids)
    running = await device_configs.reported_versions(session, device_ids=ids)
    rows = tuple(_row(e, names.get(e.device_id, ""), running.get(e.device_id, 0)) for e in entries)
    filters = {"device": device, "from": words(start), "to": words(end)}
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
