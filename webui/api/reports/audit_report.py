"""/api/v1/reports/audit: the audit log, filtered, as a report."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/reports", tags=["reports"])
