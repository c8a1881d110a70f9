"""/api/v1/reports/availability: the share of each day each device was online."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/reports", tags=["reports"])
