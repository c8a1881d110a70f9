"""/api/v1/audit: the audit log and a check of its hash chain (needs ``audit:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from core.services import audit
from core.services.actor import Actor
from webui.api.schemas import AuditOut, AuditVerifyOut
from webui.deps import SessionDep, require

router = APIRouter(prefix="/audit", tags=["audit"])
Reader = Annotated[Actor, Depends(require("audit:read"))]


@router.get("")
async def list_audit(
    session: SessionDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuditOut]:
    """The newest entries first."""
    rows = await audit.recent(session, limit=limit, offset=offset)
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/verify")
async def verify(session: SessionDep, actor: Reader) -> AuditVerifyOut:
    """Recompute the hash chain: any edited or removed row shows up here."""
    report = await audit.verify_chain(session)
    return AuditVerifyOut(rows=report.rows, intact=report.intact, first_bad_id=report.first_bad_id)
