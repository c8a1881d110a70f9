"""/api/v1/reports/audit: the audit log, filtered, as a report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from core.services import reports
from core.services.actor import Actor
from core.services.audit_search import AuditQuery
from core.services.reports import audit_report
from webui.api.audit import Storable
from webui.api.reports import FormatQuery, ReportOut, respond
from webui.api.reports.ranges import From, To
from webui.deps import SessionDep, require

router = APIRouter(prefix="/reports", tags=["reports"])
Reporter = Annotated[Actor, Depends(require(reports.PERMISSION))]


@router.get("/audit", response_model=ReportOut, dependencies=[Depends(require(audit_report.READS))])
async def audit_log_report(
    session: SessionDep,
    actor: Reporter,
    who: Annotated[
        Storable, Query(alias="actor", max_length=128, description="Exactly this actor")
    ] = None,
    action: Annotated[
        Storable, Query(max_length=64, description="An action or its family: 'device'")
    ] = None,
    target_type: Annotated[Storable, Query(max_length=32)] = None,
    target_id: Annotated[Storable, Query(max_length=128)] = None,
    start: From = None,
    end: To = None,
    format: FormatQuery = "json",
) -> ReportOut | Response:
    """The matching entries oldest first, names beside ids, each change in words; more than
    10,000 is a 422 asking to narrow the filters."""
    query = AuditQuery(
        actor=who or None,
        action=action or None,
        target_type=target_type or None,
        target_id=target_id or None,
    )
    table = await audit_report.audit_report(
        session, actor=actor, query=query, since=start, until=end
    )
    return await respond(session, actor=actor, table=table, format=format)
