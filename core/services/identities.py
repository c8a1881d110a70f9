"""Users' accounts at an OpenID Connect provider (this table): found, linked, touched."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import UserIdentity
from core.db.types import utcnow


async def find(session: AsyncSession, *, issuer: str, subject: str) -> UserIdentity | None:
    """The link of this provider account to a user, if it has signed in before."""
    return await session.get(UserIdentity, (issuer, subject))


async def link(
    session: AsyncSession, *, issuer: str, subject: str, user_id: uuid.UUID, email: str
) -> UserIdentity:
    """Link a provider account to the user it signs in as, for good."""
    identity = UserIdentity(issuer=issuer, subject=subject, user_id=user_id, email=email[:320])
    session.add(identity)
    await session.flush()
    return identity


def touch(identity: UserIdentity, *, email: str) -> None:
    """Note a sign-in through the link, with the address the provider gives now."""
    identity.email, identity.last_sign_in_at = email[:320], utcnow()
