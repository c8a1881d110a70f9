"""/api/v1/reports/offline-events: every offline period of the fleet or one device."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/reports", tags=["reports"])
