"""/api/v1/health: is the server up, its database reachable, and its broker link up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import text

from core.services.actor import Actor
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
    status: str
    database: str
    broker: LinkOut


class HealthDetailOut(HealthOut):
    broker: LinkDetailOut


@router.get("")
async def health(session: SessionDep, backbone: BackboneDep) -> HealthOut:
    """Up, with the database answering; the broker link's state (down is not an error).

    Anyone may ask (load balancers do), so it names no account, host or reason.
    """
    await session.execute(text("SELECT 1"))
    link = backbone.link()
    return HealthOut(
        status="ok", database="ok", broker=LinkOut(state=link["state"], since=link["since"])
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
