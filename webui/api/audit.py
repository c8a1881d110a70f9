"""/api/v1/audit: the audit log and a check of its hash chain (needs ``audit:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from core.services import audit
from core.services.actor import Actor
from webui.api.schemas import AuditOut, AuditVerifyOut
from webui.deps import ServicesDep, SessionDep, require

router = APIRouter(prefix="/audit", tags=["audit"])
Reader = Annotated[Actor, Depends(require("audit:read"))]
# The databases' 64-bit integer: past it the driver cannot even send the number (a 500).
MAX_OFFSET = 2**63 - 1


@router.get("")
async def list_audit(
    session: SessionDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[AuditOut]:
    """The newest entries first."""
    rows = await audit.recent(session, limit=limit, offset=offset)
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]


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
