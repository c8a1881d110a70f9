"""/api/v1/roles and /api/v1/permissions (needs ``roles:manage``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Role
from core.services import roles
from core.services.actor import Actor
from webui.api.schemas import PermissionOut, RoleCreate, RoleOut, RoleUpdate
from webui.deps import SessionDep, require

router = APIRouter(tags=["roles"])
Manager = Annotated[Actor, Depends(require("roles:manage"))]


async def _out(session: AsyncSession, role: Role) -> RoleOut:
    return RoleOut(
        id=role.id,
        name=role.name,
        description=role.description,
        builtin=role.builtin,
        permissions=await roles.permissions_of(session, role.id),
        updated_at=role.updated_at,
    )


@router.get("/permissions")
async def list_permissions(session: SessionDep, actor: Manager) -> list[PermissionOut]:
    """The permission catalogue."""
    return [
        PermissionOut(name=p.name, description=p.description)
        for p in await roles.list_permissions(session)
    ]


@router.get("/roles")
async def list_roles(session: SessionDep, actor: Manager) -> list[RoleOut]:
    """Every role with its permissions."""
    return [await _out(session, r) for r in await roles.list_roles(session)]


@router.post("/roles", status_code=status.HTTP_201_CREATED)
async def create_role(body: RoleCreate, session: SessionDep, actor: Manager) -> RoleOut:
    """Create a custom role."""
    role = await roles.create_role(session, actor=actor, **body.model_dump())
    return await _out(session, role)


@router.get("/roles/{role_id}")
async def get_role(role_id: uuid.UUID, session: SessionDep, actor: Manager) -> RoleOut:
    """One role."""
    return await _out(session, await roles.get_role(session, role_id))


@router.patch("/roles/{role_id}")
async def update_role(
    role_id: uuid.UUID, body: RoleUpdate, session: SessionDep, actor: Manager
) -> RoleOut:
    """Rename a custom role or change its permissions."""
    role = await roles.update_role(
        session, actor=actor, role_id=role_id, **body.model_dump(exclude_unset=True)
    )
    return await _out(session, role)


@router.delete("/roles/{role_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(role_id: uuid.UUID, session: SessionDep, actor: Manager) -> None:
    """Delete a custom role; users holding it lose it."""
    await roles.delete_role(session, actor=actor, role_id=role_id)
