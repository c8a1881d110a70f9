"""FastAPI dependencies: the app's services, a database session, the signed-in user, permissions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import User
from core.errors import AuthError
from core.services import auth, refusals
from core.services.actor import Actor
from core.settings import Settings
from webui.backbone.server import Backbone
from webui.services import Services

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")


def get_services(request: Request) -> Services:
    """The services the composition root built (``webui.app.build`` sets them once)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_settings(services: ServicesDep) -> Settings:
    """The settings the server was started with."""
    return services.settings


def get_database(services: ServicesDep) -> Database:
    """The server's database."""
    return services.database


def get_backbone(services: ServicesDep) -> Backbone:
    """The server's MQTT side."""
    return services.backbone


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
BackboneDep = Annotated[Backbone, Depends(get_backbone)]


async def get_session(database: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session per request: committed when the handler returns, rolled back on error."""
    async with database.session() as session:
        yield session


# scope="function": commit before the response is sent, so a client never hears of a change
# that is not yet stored (or whose commit then fails); FastAPI's default commits after it.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    """The caller of a request: user, acting identity and sign-in session."""

    user: User
    actor: Actor
    session_id: uuid.UUID


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(
    session: SessionDep, settings: SettingsDep, credentials: BearerDep
) -> Principal:
    """The signed-in caller, or 401."""
    return await principal_of(session, settings, credentials)


async def principal_of(
    session: AsyncSession, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The caller of ``credentials``, checked now against its live sign-in session, or 401.

    For a route that reads more than once without holding a session in between (a long
    poll): each read checks the caller again, in its own session.
    """
    if credentials is None:
        raise _unauthorized("not signed in: send 'Authorization: Bearer <access token>'")
    try:
        user, actor, session_id = await auth.authenticate(
            session, settings=settings, access_token=credentials.credentials
        )
    except AuthError as error:
        raise _unauthorized(error.message) from error
    return Principal(user, actor, session_id)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[[Principal, Request, Database], Awaitable[Actor]]:
    """A dependency that lets the request through only with ``permission``.

    A refusal is audited (``core.services.refusals``: rate-limited, and answered 403 even
    when its entry cannot be written).
    """

    async def check(principal: PrincipalDep, request: Request, database: DatabaseDep) -> Actor:
        return permitted(principal, permission, database=database, request=request)

    check.permission = permission  # type: ignore[attr-defined]
    return check


def _route(request: Request) -> str:
    """The method and the matched route's template: an id in the path opens no new window.

    A route of an included router knows only its own part of the template; the prefixes
    before it are the path's leading segments, which matched them literally.
    """
    template = getattr(request.scope.get("route"), "path", None)
    if not isinstance(template, str) or ":path}" in template:
        return f"{request.method} {template or request.url.path}"
    segments = request.url.path.split("/")
    prefix = "/".join(segments[: len(segments) - template.count("/")])
    return f"{request.method} {prefix}{template}"


def permitted(
    principal: Principal, permission: str, *, database: Database, request: Request
) -> Actor:
    """``principal``'s acting identity if it holds ``permission``, or 403, audited as ``require``
    audits it (for a route that checks again later, such as a long poll)."""
    if not principal.actor.can(permission):
        refusals.refuse(
            database, actor=principal.actor.name, permission=permission, route=_route(request)
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"'{permission}' is required")
    return principal.actor
