"""GET /metrics: Prometheus text for scrapers (counts only; nothing a user owns)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from webui.backbone.metrics import CONTENT_TYPE
from webui.deps import BackboneDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(backbone: BackboneDep) -> Response:
    """Messages received, stored and dropped by reason, batch sizes, ingest lag, devices."""
    return Response(backbone.metrics.render(), media_type=CONTENT_TYPE)
