"""Small helpers the API tests share: reading the audit log and error bodies."""

from __future__ import annotations

from typing import Any

import httpx


async def audit_entries(
    client: httpx.AsyncClient, admin: dict[str, str], *, action: str | None = None
) -> list[dict[str, Any]]:
    """Audit rows as the API shows them (newest first), optionally of one action."""
    response = await client.get("/api/v1/audit", params={"limit": 1000}, headers=admin)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return [r for r in rows if action is None or r["action"] == action]


def error_field(response: httpx.Response) -> str | None:
    """The field a 4xx answer blames: ours (``field``) or FastAPI's validation ``loc``."""
    body = response.json()
    if "field" in body:
        return str(body["field"])
    detail = body["detail"]
    if isinstance(detail, list) and detail:
        return str(detail[0]["loc"][-1])
    return None


def assert_rejected(response: httpx.Response, status: int, field: str | None = None) -> None:
    """A 4xx with a reason a person can read, blaming ``field`` when given."""
    assert response.status_code == status, response.text
    assert response.json()["detail"], response.text
    if field is not None:
        assert error_field(response) == field, response.text
