"""The REST API under /api/v1."""

from __future__ import annotations

from functools import cache

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
from webui.api.reports import audit_report, availability, config_changes, offline_events


@cache
def router() -> APIRouter:
    """Every /api/v1 route, built once a process.

    Its routes hold no state of an app (the services come from ``app.state``), and FastAPI
    remembers the analysis of a router it has included: a test suite that builds an app per
    test includes this one router each time at no cost, a new one at ~0.15 s.
    """
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
        offline_events,
        availability,
        config_changes,
        audit_report,
        health,
    ):
        api.include_router(module.router)
    return api
