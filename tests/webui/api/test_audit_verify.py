"""GET /api/v1/audit/verify: the chain held against the server's signed checkpoint."""

from __future__ import annotations

import httpx

from core.db.engine import Database
from tests.core.test_audit_checkpoints import _as_owner
from tests.webui.conftest import LoginAs


async def test_verify_reports_a_removed_tail(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    first = await client.get("/api/v1/audit/verify", headers=admin)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["intact"], body["first_bad_id"]) == ("intact", True, None)
    head = body["head_id"]

    await _as_owner(database, f"DELETE FROM audit_log WHERE id >= {head}")

    after = (await client.get("/api/v1/audit/verify", headers=admin)).json()
    assert (after["status"], after["intact"]) == ("shortened", False)
    assert f"saw entry #{head}" in after["detail"]
