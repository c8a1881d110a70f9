"""GET /metrics: Prometheus text for scrapers (counts only; nothing a user owns)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from webui.backbone.metrics import CONTENT_TYPE
from webui.backbone.server import Backbone

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Messages received, stored and dropped by reason, batch sizes, ingest lag, devices."""
    backbone: Backbone = request.app.state.backbone
    return Response(backbone.metrics.render(), media_type=CONTENT_TYPE)
