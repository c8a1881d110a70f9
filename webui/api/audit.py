"""/api/v1/audit: the audit log, filtered and paged, as CSV, and a check of its hash chain.

Every route needs ``audit:read``, checked on each request against the caller's live sign-in
session (``webui.deps.require``); the CSV export is itself audited before a row is read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import audit_export, audit_search
from core.services.actor import Actor
from core.services.audit_search import AuditQuery
from webui.api.schemas import AuditOut, AuditVerifyOut, in_utc_range, storable_text
from webui.deps import DatabaseDep, ServicesDep, SessionDep, require

router = APIRouter(prefix="/audit", tags=["audit"])
Reader = Annotated[Actor, Depends(require(audit_search.PERMISSION))]
# The databases' 64-bit integer: past it the driver cannot even send the number (a 500).
MAX_OFFSET = 2**63 - 1
TOTAL_HEADER = "X-Total-Count"  # how many entries match in all, for paging


def _aware(moment: datetime | None) -> datetime | None:
    """``moment`` if it names its offset and UTC can represent it."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        msg = "give the time with its offset, such as 2026-11-30T14:00:00Z"
        raise ValueError(msg)
    return in_utc_range(moment)


Moment = Annotated[datetime | None, AfterValidator(_aware)]
# Every text filter reaches the database: what it cannot store (NUL) is a 422 here.
Storable = Annotated[str | None, AfterValidator(storable_text)]
Text = Annotated[Storable, Query(max_length=audit_search.MAX_TEXT)]
Short = Annotated[Storable, Query(max_length=128)]


def _query(
    actor: Annotated[Storable, Query(max_length=128, description="Exactly this actor")] = None,
    action: Annotated[
        Storable, Query(max_length=64, description="An action or its family: 'user'")
    ] = None,
    target_type: Annotated[Storable, Query(max_length=32)] = None,
    target_id: Short = None,
    since: Annotated[Moment, Query(description="ISO 8601 with an offset, inclusive")] = None,
    until: Annotated[Moment, Query(description="ISO 8601 with an offset, exclusive")] = None,
    q: Annotated[Text, Query(description="Text in actor, action, target, names or fields")] = None,
) -> AuditQuery:
    return audit_search.as_query(
        {
            "actor": actor,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "since": since,
            "until": until,
            "text": (q or "").strip(),
        }
    )


Filters = Annotated[AuditQuery, Depends(_query)]


@router.get("")
async def list_audit(
    session: SessionDep,
    actor: Reader,
    query: Filters,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=audit_search.MAX_PAGE)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[AuditOut]:
    """The matching entries, newest first; ``X-Total-Count`` says how many match in all."""
    page = await audit_search.search(session, actor=actor, query=query, limit=limit, offset=offset)
    response.headers[TOTAL_HEADER] = str(page.total)
    return [AuditOut.model_validate(r, from_attributes=True) for r in page.entries]


async def csv_response(
    session: AsyncSession, database: Database, *, actor: Actor, query: AuditQuery
) -> StreamingResponse:
    """The audited CSV of the matching entries before the export's own (API and page alike).

    The audit entry goes into ``session``; the rows stream once the response is sent, after
    the caller has committed it, from sessions of their own.
    """
    own = await audit_export.start_export(session, actor=actor, query=query)
    filename = audit_export.export_filename(datetime.now(UTC))
    return StreamingResponse(
        audit_export.csv_lines(database, actor=actor, query=query, below=own),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(".csv", response_class=StreamingResponse)
async def export_csv(
    session: SessionDep, database: DatabaseDep, actor: Reader, query: Filters
) -> StreamingResponse:
    """The matching entries as CSV, newest first, times in UTC (ISO 8601); the export is audited."""
    return await csv_response(session, database, actor=actor, query=query)


@router.get("/verify")
async def verify(services: ServicesDep, actor: Reader) -> AuditVerifyOut:
    """Recompute the keyed chain against the last signed checkpoint (and checkpoint it).

    ``status`` says intact, tampered (at ``first_bad_id``), shortened or emptied against
    the checkpoint, checkpoint_missing or checkpoint_invalid; ``detail`` says it in words.
    """
    report = await services.audit.verify()
    return AuditVerifyOut(
        rows=report.rows,
        intact=report.intact,
        first_bad_id=report.first_bad_id,
        status=report.status.value,
        detail=report.detail,
        head_id=report.head_id,
    )
