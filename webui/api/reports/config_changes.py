"""/api/v1/reports/config-changes: each configuration version, its author, diff and outcome."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/reports", tags=["reports"])
