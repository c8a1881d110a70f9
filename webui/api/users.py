"""/api/v1/users: user accounts (needs ``users:manage``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import User
from core.services import users
from core.services.actor import Actor
from webui.api.schemas import UserCreate, UserOut, UserUpdate
from webui.deps import SessionDep, require

router = APIRouter(prefix="/users", tags=["users"])
Manager = Annotated[Actor, Depends(require("users:manage"))]


async def _out(session: AsyncSession, user: User) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        is_active=user.is_active,
        roles=await users.role_names(session, user.id),
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


@router.get("")
async def list_users(session: SessionDep, actor: Manager) -> list[UserOut]:
    """Every user."""
    return [await _out(session, u) for u in await users.list_users(session, actor=actor)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, session: SessionDep, actor: Manager) -> UserOut:
    """Create a user with roles."""
    user = await users.create_user(session, actor=actor, **body.model_dump())
    return await _out(session, user)


@router.get("/{user_id}")
async def get_user(user_id: uuid.UUID, session: SessionDep, actor: Manager) -> UserOut:
    """One user."""
    return await _out(session, await users.get_user(session, user_id))


@router.patch("/{user_id}")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, actor: Manager
) -> UserOut:
    """Change name, password, roles, or disable with ``is_active: false``."""
    user = await users.update_user(
        session, actor=actor, user_id=user_id, **body.model_dump(exclude_unset=True)
    )
    return await _out(session, user)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: uuid.UUID, session: SessionDep, actor: Manager) -> None:
    """Delete a user (a tombstone, kept for sync and audit)."""
    await users.delete_user(session, actor=actor, user_id=user_id)
