"""The REST API under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from webui.api import (
    audit,
    auth,
    commands,
    configs,
    devices,
    errors,
    health,
    history,
    quarantine,
    roles,
    sync,
    users,
)


def router() -> APIRouter:
    """Every /api/v1 route."""
    api = APIRouter(prefix="/api/v1", responses=errors.RESPONSES)
    for module in (
        auth,
        users,
        roles,
        devices,
        configs,
        history,
        quarantine,
        commands,
        sync,
        audit,
        health,
    ):
        api.include_router(module.router)
    return api
