"""Counts the reports need from telemetry: replayed samples, and seqs dropped by a cap.

Each asks about many time windows (one per offline period) in one statement per
``CHUNK`` windows, a scalar subquery per window: the samples' is a range of the
``(device_id, ts)`` index, the gaps' a device's few rows. A report of a thousand periods
costs a few round trips, not a thousand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import TelemetryGap, TelemetrySample

# Windows per statement: three parameters and one result column each stays well inside
# PostgreSQL's 1,664 result columns and SQLite's 2,000 columns and 32,766 parameters.
CHUNK = 400


@dataclass(frozen=True)
class Window:
    """One device's time window [start, end)."""

    device_id: str
    start: datetime
    end: datetime


def _replayed(window: Window) -> ScalarSelect[Any]:
    return (
        select(func.count())
        .select_from(TelemetrySample)
        .where(
            TelemetrySample.device_id == window.device_id,
            TelemetrySample.ts >= window.start,
            TelemetrySample.ts < window.end,
            TelemetrySample.replayed.is_(True),
        )
        .scalar_subquery()
    )


def _dropped(window: Window) -> ScalarSelect[Any]:
    seqs = TelemetryGap.last_seq - TelemetryGap.first_seq + 1  # a gap's seqs, both ends in
    return (
        select(func.coalesce(func.sum(seqs), 0))
        .where(
            TelemetryGap.device_id == window.device_id,
            TelemetryGap.received_at >= window.start,
            TelemetryGap.received_at < window.end,
        )
        .scalar_subquery()
    )


async def _counts(
    session: AsyncSession, windows: Sequence[Window], count: Callable[[Window], ScalarSelect[Any]]
) -> list[int]:
    found: list[int] = []
    for first in range(0, len(windows), CHUNK):
        chunk = windows[first : first + CHUNK]
        query = select(*(count(w).label(f"w{i}") for i, w in enumerate(chunk)))
        found.extend(int(n or 0) for n in (await session.execute(query)).one())
    return found


async def replayed(session: AsyncSession, windows: Sequence[Window]) -> list[int]:
    """For each window, the device's samples stored as replayed whose ``ts`` lies in it."""
    return await _counts(session, windows, _replayed)


async def dropped(session: AsyncSession, windows: Sequence[Window]) -> list[int]:
    """For each window, the seqs the device reported dropped (gaps received in it)."""
    return await _counts(session, windows, _dropped)
