"""The offline-events report: every offline period overlapping [from, to), and what it cost.

One row per period of ``offline_events`` (presence records them from wills, clean stops
and stale sweeps), of one device or all, ordered by start. A period is in when it overlaps
the range at all (started before ``to``, and ended after ``from`` or still open); its
figures are the whole period's, not cut at the range:

- ``duration_s``: from start to end, exact to the microsecond; a period still open counts
  until now (``ended_at`` is then None).
- ``replayed_after``: the device's samples stored as replayed (sent from its outbox after
  reconnecting) whose sample time lies in [started_at, ended_at or now): the readings the
  outage held back that came home.
- ``dropped_by_cap``: seqs the device reported dropped (``telemetry_gaps``, every reason:
  a station reports only what its outbox cap dropped) that the server received from the
  period's start until the device's next period starts (or now). A station reports what its
  cap dropped when it replays after reconnecting, so the report comes after the period,
  before the next.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidError
from core.services import devices, offline_events
from core.services.actor import Actor
from core.services.reports import Column, Table, Value, require
from core.services.reports.span import Span, seconds
from core.services.telemetry import report_counts

NAME = "offline-events"
COLUMNS = (
    Column("device_id", "Device"),
    Column("device_name", "Name"),
    Column("started_at", "Started"),
    Column("ended_at", "Ended"),
    Column("duration_s", "Duration", "s"),
    Column("reason", "Reason"),
    Column("replayed_after", "Replayed after", "samples"),
    Column("dropped_by_cap", "Dropped by cap", "samples"),
)
ALL_DEVICES = "all devices"  # the device filter in words when none is named
# Periods a report holds at most, as the other reports: each is counted against the samples
# and gaps, and past this the caller narrows the range or names a device (a 422 saying so).
MAX_ROWS = 10_000


async def _device_words(session: AsyncSession, *, actor: Actor, device_id: str | None) -> str:
    """The device asked for, in words (NotFoundError for an unknown id)."""
    if device_id is None:
        return ALL_DEVICES
    await devices.get_device(session, actor=actor, device_id=device_id)
    return device_id


async def report(
    session: AsyncSession, *, actor: Actor, device_id: str | None, span: Span, now: datetime
) -> Table:
    """The offline periods overlapping ``span`` of ``device_id`` (None: every device)."""
    require(actor, "devices:read")
    device = await _device_words(session, actor=actor, device_id=device_id)
    periods = await offline_events.overlapping(
        session,
        actor=actor,
        device_id=device_id,
        start=span.start,
        end=span.end,
        limit=MAX_ROWS + 1,
    )
    if len(periods) > MAX_ROWS:
        msg = f"more than {MAX_ROWS:,} offline periods match: choose a shorter period or one device"
        raise InvalidError(msg, field="from")
    spans = offline_events.spans(device_id=device_id, start=span.start, end=span.end, now=now)
    lasting = select(
        spans.c.key,
        spans.c.device_id,
        spans.c.started_at.label("start"),
        spans.c.until.label("end"),
    ).subquery()
    reporting = select(
        spans.c.key,
        spans.c.device_id,
        spans.c.started_at.label("start"),
        spans.c.next_start.label("end"),
    ).subquery()
    replayed = await report_counts.replayed(session, lasting)
    dropped = await report_counts.dropped(session, reporting)
    names = await devices.names(session, {p.device_id for p in periods})
    rows: list[dict[str, Value]] = [
        {
            "device_id": period.device_id,
            "device_name": names.get(period.device_id, ""),
            "started_at": period.started_at,
            "ended_at": period.ended_at,
            "duration_s": seconds((period.ended_at or now) - period.started_at),
            "reason": period.reason,
            "replayed_after": replayed.get(period.id, 0),
            "dropped_by_cap": dropped.get(period.id, 0),
        }
        for period in periods
    ]
    return Table(
        name=NAME,
        title="Offline events",
        columns=COLUMNS,
        rows=tuple(rows),
        filters={"device": device, **span.filters()},
    )
