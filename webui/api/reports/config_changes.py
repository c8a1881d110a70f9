"""/api/v1/reports/config-changes: each configuration version, its author, diff and outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from core.services import reports
from core.services.actor import Actor
from core.services.reports import config_changes
from webui.api.reports import FormatQuery, ReportOut, respond
from webui.api.reports.ranges import AskedDep
from webui.deps import SessionDep, require

router = APIRouter(prefix="/reports", tags=["reports"])
Reporter = Annotated[Actor, Depends(require(reports.PERMISSION))]


@router.get(
    "/config-changes",
    response_model=ReportOut,
    dependencies=[Depends(require(config_changes.READS))],
)
async def config_changes_report(
    session: SessionDep,
    actor: Reporter,
    asked: AskedDep,
    format: FormatQuery = "json",
) -> ReportOut | Response:
    """Each version whose ``changed_at`` is in [from, to), oldest first: who made it, what it
    changed in words, and what the station said of it (applied, rejected, superseded,
    pending, or unknown for a version older than outcomes)."""
    table = await config_changes.config_changes(
        session, actor=actor, device_id=asked.device_id, since=asked.start, until=asked.end
    )
    return await respond(session, actor=actor, table=table, format=format)
