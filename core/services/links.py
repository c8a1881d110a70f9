"""Many-to-many links kept as rows with tombstones, so sync sees removals too."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core import hlc


async def reconcile(
    session: AsyncSession,
    *,
    owner: InstrumentedAttribute[uuid.UUID],
    owner_id: uuid.UUID,
    other: InstrumentedAttribute[uuid.UUID],
    wanted: set[uuid.UUID],
) -> None:
    """Make exactly ``wanted`` live for ``owner_id``: revive, add or tombstone link rows.

    Only rows whose state changes get a new ``updated_at``, so an unchanged link never
    wins a sync conflict it has no part in.
    """
    model: Any = owner.class_
    query = select(model).where(owner == owner_id)
    rows = {getattr(row, other.key): row for row in await session.scalars(query)}
    for other_id in wanted | rows.keys():
        keep, row = other_id in wanted, rows.get(other_id)
        if row is None:
            session.add(model(**{owner.key: owner_id, other.key: other_id}, updated_at=hlc.now()))
        elif row.deleted == keep:
            row.deleted, row.updated_at = not keep, hlc.now()
    await session.flush()
