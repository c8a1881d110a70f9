"""A success answer is only sent once its changes are committed."""

from __future__ import annotations

from typing import Any

import httpx
from nicegui import core
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import Device
from tests.webui.conftest import LoginAs


async def test_device_is_stored_before_the_client_hears_201(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    """Another connection sees the new device by the time the response starts."""
    headers = await login_as("ada")
    seen_at_response: list[list[str]] = []

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def send_and_look(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                async with database.session() as session:
                    seen_at_response.append(list(await session.scalars(select(Device.id))))
            await send(message)

        await core.app(scope, receive, send_and_look)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(watching), base_url="http://test"
    ) as watched:
        response = await watched.post("/api/v1/devices", json={"id": "press-01"}, headers=headers)
    assert response.status_code == 201, response.text
    assert seen_at_response == [["press-01"]]
