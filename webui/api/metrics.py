"""GET /metrics: Prometheus text for scrapers (counts only; nothing a user owns)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from webui.api.errors import ErrorOut
from webui.backbone.metrics import CONTENT_TYPE
from webui.deps import BackboneDep, SettingsDep

_bearer = HTTPBearer(auto_error=False, description="PP_METRICS_TOKEN, when the server sets one")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _scraper(settings: SettingsDep, credentials: Credentials) -> None:
    """Let the request through if no token is set, or it bears the one that is (else 401)."""
    expected = settings.metrics_token
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    # Constant time: how long a wrong token takes says nothing of how much of it was right.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="send 'Authorization: Bearer <PP_METRICS_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(
    tags=["metrics"],
    dependencies=[Depends(_scraper)],
    responses={status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut}},
)


@router.get("/metrics", response_class=Response)
async def metrics(backbone: BackboneDep) -> Response:
    """Messages received, stored and dropped by reason, batch sizes, ingest lag, devices."""
    return Response(backbone.metrics.render(), media_type=CONTENT_TYPE)
