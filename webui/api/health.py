"""/api/v1/health: is the server up and its database reachable."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from webui.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(session: SessionDep) -> dict[str, str]:
    """Up, with the database answering."""
    await session.execute(text("SELECT 1"))
    return {"status": "ok", "database": "ok"}
