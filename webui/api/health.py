"""/api/v1/health: is the server up, its database reachable, and its broker link up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.availability import database_unavailable
from core.services.actor import Actor
from webui.api.errors import DATABASE_RETRY_AFTER_S
from webui.deps import BackboneDep, SessionDep, require

router = APIRouter(prefix="/health", tags=["health"])
# Whoever manages devices manages their broker accounts: the server's own endpoint and
# account, which the link's detail names, are no secret to them.
Operator = Annotated[Actor, Depends(require("devices:write"))]


class LinkOut(BaseModel):
    state: str = Field(
        description="starting, connected, reconnecting, conflict, auth_failed, stopped or disabled"
    )
    since: str = Field(description="ISO-8601, when it entered this state (empty if never)")


class LinkDetailOut(LinkOut):
    detail: str = Field(description="The broker's endpoint and account, or why the link is down")


class HealthOut(BaseModel):
    status: str = Field(description="ok, or unavailable while the database does not answer")
    database: str = Field(description="ok, or unavailable (down, starting up, unreachable)")
    broker: LinkOut


class HealthDetailOut(HealthOut):
    broker: LinkDetailOut


async def _database_answers(session: AsyncSession) -> bool:
    """Whether the database answers a query; any other failure stays the 500 it is."""
    try:
        await session.execute(text("SELECT 1"))
    except Exception as error:
        if not database_unavailable(error):
            raise
        return False
    return True


@router.get(
    "",
    response_model=HealthOut,
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": HealthOut,
            "description": "Not ready: the database does not answer (Retry-After says when)",
        }
    },
)
async def health(session: SessionDep, backbone: BackboneDep) -> HealthOut | JSONResponse:
    """Up, with the database answering; the broker link's state (down is not an error).

    A database away (down, starting up, unreachable) is not ready: 503, the same body with
    ``unavailable`` in it, and Retry-After. Anyone may ask (load balancers do), so it names
    no account, host or reason.
    """
    link = backbone.link()
    broker = LinkOut(state=link["state"], since=link["since"])
    if await _database_answers(session):
        return HealthOut(status="ok", database="ok", broker=broker)
    away = HealthOut(status="unavailable", database="unavailable", broker=broker)
    return JSONResponse(
        away.model_dump(),
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


@router.get("/details")
async def health_details(
    session: SessionDep, backbone: BackboneDep, actor: Operator
) -> HealthDetailOut:
    """As /health, with why the link is as it is: endpoint and account (``devices:write``)."""
    await session.execute(text("SELECT 1"))
    return HealthDetailOut(
        status="ok", database="ok", broker=LinkDetailOut.model_validate(backbone.link())
    )
