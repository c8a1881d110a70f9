"""Counts the reports need from telemetry: replayed samples, and seqs dropped by a cap.

Each counts in many time windows at once, given as a subquery of rows (``key``,
``device_id``, ``start``, ``end``) that another table's owner builds (such as the offline
periods): one statement joins them to the samples' ``(device_id, ts)`` index, or to the
device's few gaps, and groups by window. The windows never travel as parameters: a
thousand of them bound one by one cost seconds to send and plan on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Subquery, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import TelemetryGap, TelemetrySample


async def replayed(session: AsyncSession, windows: Subquery) -> dict[int, int]:
    """Per window key: the device's samples stored as replayed whose ``ts`` lies in it."""
    inside = and_(
        TelemetrySample.device_id == windows.c.device_id,
        TelemetrySample.ts >= windows.c.start,
        TelemetrySample.ts < windows.c.end,
    )
    query = (
        select(windows.c.key, func.count())
        .select_from(windows)
        .join(TelemetrySample, inside)
        .where(TelemetrySample.replayed.is_(True))
        .group_by(windows.c.key)
    )
    return {key: int(n) for key, n in (await session.execute(query)).all()}


async def dropped(session: AsyncSession, windows: Subquery) -> dict[int, int]:
    """Per window key: the seqs the device reported dropped (gaps received in the window)."""
    inside = and_(
        TelemetryGap.device_id == windows.c.device_id,
        TelemetryGap.received_at >= windows.c.start,
        TelemetryGap.received_at < windows.c.end,
    )
    seqs = TelemetryGap.last_seq - TelemetryGap.first_seq + 1  # a gap's seqs, both ends in
    query = (
        select(windows.c.key, func.sum(seqs))
        .select_from(windows)
        .join(TelemetryGap, inside)
        .group_by(windows.c.key)
    )
    return {key: int(n) for key, n in (await session.execute(query)).all()}
