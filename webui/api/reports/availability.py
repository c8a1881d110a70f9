"""/api/v1/reports/availability: the share of each day each device was online."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AfterValidator

from core.services import reports
from core.services.actor import Actor
from core.services.reports import availability, span
from webui.api.reports import FormatQuery, ReportOut, respond
from webui.api.reports.ranges import RESPONSES, AskedDep
from webui.api.schemas import storable_text
from webui.deps import SessionDep, require

router = APIRouter(prefix="/reports", tags=["reports"])
ReportReader = Annotated[Actor, Depends(require(reports.PERMISSION))]
DeviceReader = Annotated[Actor, Depends(require("devices:read"))]
Zone = Annotated[
    str,
    Query(
        max_length=availability.MAX_ZONE_NAME,
        description="The IANA zone whose calendar days the report counts, such as Europe/Berlin",
    ),
    AfterValidator(storable_text),
]


@router.get("/availability", response_model=ReportOut, responses=RESPONSES)
async def availability_report(
    session: SessionDep,
    actor: ReportReader,
    _: DeviceReader,
    asked: AskedDep,
    tz: Zone = availability.DEFAULT_ZONE,
    format: FormatQuery = "json",
) -> ReportOut | Response:
    """Per device and calendar day of ``tz``: the time observed in [from, to) since the
    device was registered and before now, how much of it was offline, and the share online
    (percent to two places, half up). ``format=csv`` or ``pdf`` downloads it, audited; a
    PDF shows its times in ``tz``."""
    now = datetime.now(UTC)
    table = await availability.report(
        session,
        actor=actor,
        device_id=asked.device_id,
        span=span.asked(start=asked.start, end=asked.end, now=now),
        zone_name=tz,
        now=now,
    )
    # Its days are the zone's, so a PDF of it shows its times in that zone too.
    return await respond(
        session, actor=actor, table=table, format=format, zone=availability.zone(tz)
    )
