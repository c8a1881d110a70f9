"""The reports the page offers: each one's name, title, permission and how it is asked.

One ``Ask`` (a device or all, a range, the reader's zone) serves every report; each entry
turns it into its service's own question. The page and its downloads look reports up here,
so the screen, the CSV and the PDF run the same service with the same filters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from core.services import audit_search
from core.services.actor import Actor
from core.services.audit_search import AuditQuery
from core.services.reports import Table, audit_report, availability, config_changes, offline, span
from core.services.reports.cells import zone_name


@dataclass(frozen=True)
class Ask:
    """What the reader asked: one device (None: all), [start, end) and the zone they read in;
    for the audit log also who acted and which action or family (None: any)."""

    device_id: str | None
    start: datetime | None
    end: datetime | None
    zone: tzinfo = UTC
    actor: str | None = None
    action: str | None = None


Run = Callable[[AsyncSession, Actor, Ask], Awaitable[Table]]


@dataclass(frozen=True)
class Report:
    """One report: its route name, title, the read permission of its data, how it runs."""

    name: str
    title: str
    reads: str  # besides reports:read: reports must not become a way round it
    run: Run


async def _offline(session: AsyncSession, actor: Actor, ask: Ask) -> Table:
    now = datetime.now(UTC)
    asked = span.asked(start=ask.start, end=ask.end, now=now)
    return await offline.report(session, actor=actor, device_id=ask.device_id, span=asked, now=now)


async def _availability(session: AsyncSession, actor: Actor, ask: Ask) -> Table:
    now = datetime.now(UTC)
    asked = span.asked(start=ask.start, end=ask.end, now=now)
    return await availability.report(
        session,
        actor=actor,
        device_id=ask.device_id,
        span=asked,
        zone_name=zone_name(ask.zone),  # days as the reader's calendar has them
        now=now,
    )


async def _config_changes(session: AsyncSession, actor: Actor, ask: Ask) -> Table:
    return await config_changes.config_changes(
        session, actor=actor, device_id=ask.device_id, since=ask.start, until=ask.end
    )


async def _audit(session: AsyncSession, actor: Actor, ask: Ask) -> Table:
    query = AuditQuery(  # one device: what was done to it
        actor=ask.actor,
        action=ask.action,
        target_type="device" if ask.device_id else None,
        target_id=ask.device_id,
    )
    return await audit_report.audit_report(
        session, actor=actor, query=query, since=ask.start, until=ask.end
    )


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report(offline.NAME, "Offline events", "devices:read", _offline),
        Report(availability.NAME, "Availability", "devices:read", _availability),
        Report(config_changes.NAME, "Configuration changes", config_changes.READS, _config_changes),
        Report(audit_report.NAME, "Audit log", audit_search.PERMISSION, _audit),
    )
}
