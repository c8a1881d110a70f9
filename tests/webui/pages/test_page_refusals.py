"""A page refused to a person is audited like the API's refusals: once a minute a page."""

from __future__ import annotations

import pytest
from nicegui.testing.user import User
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry
from core.services import refusals
from tests.webui.conftest import VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in

pytestmark = pytest.mark.backends("one")


async def test_a_refused_page_is_audited_once_a_window(user: User, database: Database) -> None:
    await signed_in(user, "vic", VIEWER_PASSWORD)
    for _ in range(3):
        await user.open("/users")
        await user.should_see(marker="not-allowed", retries=30)
    await refusals.settled()
    async with database.session() as session:
        rows = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied"))
        ).all()
    assert [(r.actor, r.target_id, r.after) for r in rows] == [
        ("vic", "PAGE /users", {"permission": "users:manage", "refusals": 1})
    ]
