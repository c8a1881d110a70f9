"""/api/v1/reports/offline-events: every offline period of the fleet or one device."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from core.services import reports
from core.services.actor import Actor
from core.services.reports import offline, span
from webui.api.reports import FormatQuery, ReportOut, respond
from webui.api.reports.ranges import RESPONSES, AskedDep
from webui.deps import SessionDep, require

router = APIRouter(prefix="/reports", tags=["reports"])
ReportReader = Annotated[Actor, Depends(require(reports.PERMISSION))]
DeviceReader = Annotated[Actor, Depends(require("devices:read"))]


@router.get("/offline-events", response_model=ReportOut, responses=RESPONSES)
async def offline_events_report(
    session: SessionDep,
    actor: ReportReader,
    _: DeviceReader,
    asked: AskedDep,
    format: FormatQuery = "json",
) -> ReportOut | Response:
    """Every offline period overlapping [from, to), ordered by start, with its duration
    (an open one until now), reason, samples replayed from it and seqs its station's
    outbox cap dropped. ``format=csv`` downloads it, audited as ``reports.export``."""
    now = datetime.now(UTC)
    table = await offline.report(
        session,
        actor=actor,
        device_id=asked.device_id,
        span=span.asked(start=asked.start, end=asked.end, now=now),
        now=now,
    )
    return await respond(session, actor=actor, table=table, format=format)
