"""/devices/{id}/export.csv: the raw CSV export for a signed-in browser (``reports:read``).

The API's export takes a bearer token; a browser tab has its sign-in cookie instead, so
the history page's download comes here. Same checks, same audit entry, same CSV.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from fastapi.responses import JSONResponse, Response
from nicegui import app

from webui import signin
from webui.api.history import csv_response
from webui.services import Services


def register(services: Services) -> None:
    """Register /devices/{device_id}/export.csv."""

    @app.get("/devices/{device_id}/export.csv", include_in_schema=False)
    async def export_csv(
        device_id: str,
        start: datetime,
        end: datetime,
        channel: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        actor = await signin.current_actor(services.database)
        if actor is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        async with services.database.session() as session:
            return await csv_response(
                session,
                services.database,
                actor=actor,
                device_id=device_id,
                start=start,
                end=end,
                channels=channel,
            )
