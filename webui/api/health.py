"""/api/v1/health: is the server up, its database reachable, and its broker link up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from webui.deps import BackboneDep, SessionDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(session: SessionDep, backbone: BackboneDep) -> dict[str, Any]:
    """Up, with the database answering; the broker link as it stands (down is not an error)."""
    await session.execute(text("SELECT 1"))
    return {"status": "ok", "database": "ok", "broker": backbone.link()}
