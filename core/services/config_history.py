"""Configuration history: every desired configuration of a device, numbered, with its author.

The one module that reads and writes ``device_config_versions``. ``device_configs`` adds a
version each time the desired configuration changes (an edit, a rollback, an UpdateConfig
command, a change to many devices, or the withdrawal of a command that never arrived); the
history is only ever appended to, so who changed what and when stays readable.

What a version changed is not stored: ``diff`` works it out from the version before it,
setting by setting and, for units and thresholds, channel by channel. Versions made before
the history was kept (migration 0005 seeded each device's then current one) have no
predecessor to compare with, and say so (``changes is None``).

What became of a version is kept from the station's reports (``record_outcome``): applied,
rejected (with its reason) or superseded, with when the server first heard it; the first
word wins, since the broker hands the retained report over again on every connect.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.db.models import DeviceConfigVersion
from core.protocol.station_config import ConfigReport

Source = Literal["edit", "rollback", "command", "bulk", "withdrawn", "station"]
ChangeKind = Literal["added", "removed", "changed"]
# What a station said of a version (stored), and what a report says when it said nothing.
Outcome = Literal["applied", "rejected", "superseded"]
Shown = Literal["applied", "rejected", "superseded", "pending", "unknown"]
_STORED: dict[str, Shown] = {
    "applied": "applied",
    "rejected": "rejected",
    "superseded": "superseded",
}


@dataclass(frozen=True)
class Change:
    """One setting that differs between two configurations (``path``: ``units.rpm``)."""

    path: str
    kind: ChangeKind
    old: Any = None  # None when added: a stored configuration never holds null
    new: Any = None  # None when removed

    @property
    def text(self) -> str:
        """The change as a person reads it: ``thresholds.temp.high: 80 → 90``."""
        if self.kind == "added":
            return f"{self.path}: added {_shown(self.new)}"
        if self.kind == "removed":
            return f"{self.path}: removed (was {_shown(self.old)})"
        return f"{self.path}: {_shown(self.old)} → {_shown(self.new)}"


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"  # 1.0 seconds reads as 1, as it was typed
    if isinstance(value, str):
        return value or '""'
    return str(value)


def diff(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[Change]:
    """What changed from ``before`` to ``after``, leaf by leaf, in key order.

    Nested settings (units, thresholds and their bounds) are compared key by key, so a
    changed channel is named rather than the whole table; ``1`` and ``1.0`` are the same.
    """
    changes: list[Change] = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if _nested(old, new):
            changes += diff(old or {}, new or {}, f"{path}.")
        elif key not in after:
            changes.append(Change(path, "removed", old=old))
        elif key not in before:
            changes.append(Change(path, "added", new=new))
        elif old != new:
            changes.append(Change(path, "changed", old, new))
    return changes


def _nested(old: Any, new: Any) -> bool:
    """Both sides a table (or absent), so they are compared entry by entry."""
    tables = isinstance(old, Mapping | None) and isinstance(new, Mapping | None)
    return tables and (old is not None or new is not None)


@dataclass(frozen=True)
class Entry:
    """One version of a device's desired configuration, and what it changed."""

    device_id: str
    version: int
    settings: dict[str, Any]
    changed_by: str  # a person's name, or "device:<id>"
    changed_at: datetime
    source: str  # one of Source
    note: str
    command_id: uuid.UUID | None
    # Against the version before (version 1: against nothing asked); None when that
    # version is older than the history.
    changes: tuple[Change, ...] | None
    outcome: str | None = None  # one of Outcome; None: no word (see ``shown_outcome``)
    outcome_at: datetime | None = None  # when the server first heard it
    outcome_detail: str | None = None  # a rejection's reason, or the version that superseded


@dataclass(frozen=True)
class Drift:
    """The station runs another version than the one asked of it, and since when."""

    desired_version: int
    reported_version: int  # 0: it has not reported any
    # When the first version it does not run was asked; None when that is older than the
    # history (or the station reports a version newer than the one asked).
    since: datetime | None


async def add(
    session: AsyncSession,
    *,
    device_id: str,
    version: int,
    settings: dict[str, Any],
    changed_by: str,
    source: Source,
    note: str = "",
    command_id: uuid.UUID | None = None,
) -> DeviceConfigVersion:
    """Record ``version`` of the device's desired configuration."""
    entry = DeviceConfigVersion(
        device_id=device_id,
        version=version,
        settings=dict(settings),
        changed_by=changed_by[:128],
        changed_at=datetime.now(UTC),
        source=source,
        note=note[:512],
        command_id=command_id,
    )
    session.add(entry)
    return entry


async def get(session: AsyncSession, *, device_id: str, version: int) -> DeviceConfigVersion | None:
    """One version of the device's configuration, if it exists."""
    return await session.get(DeviceConfigVersion, (device_id, version))


async def versions(
    session: AsyncSession, *, device_id: str, limit: int = 50, before: int | None = None
) -> list[DeviceConfigVersion]:
    """The device's versions, newest first (``before``: only older than that version)."""
    query = select(DeviceConfigVersion).where(DeviceConfigVersion.device_id == device_id)
    if before is not None:
        query = query.where(DeviceConfigVersion.version < before)
    query = query.order_by(DeviceConfigVersion.version.desc()).limit(limit)
    return list(await session.scalars(query))


async def entries(
    session: AsyncSession, *, device_id: str, limit: int = 50, before: int | None = None
) -> list[Entry]:
    """The device's versions newest first, each with what it changed."""
    rows = await versions(session, device_id=device_id, limit=limit + 1, before=before)
    return [
        _entry(row, rows[i + 1] if i + 1 < len(rows) else None)
        for i, row in enumerate(rows[:limit])
    ]


async def entry(session: AsyncSession, *, device_id: str, version: int) -> Entry | None:
    """One version with what it changed, if it exists."""
    row = await get(session, device_id=device_id, version=version)
    if row is None:
        return None
    return _entry(row, await get(session, device_id=device_id, version=version - 1))


def _entry(row: DeviceConfigVersion, previous: DeviceConfigVersion | None) -> Entry:
    if row.version == 1:
        changes: tuple[Change, ...] | None = tuple(diff({}, row.settings))
    elif previous is not None and previous.version == row.version - 1:
        changes = tuple(diff(previous.settings, row.settings))
    else:
        changes = None
    return Entry(
        device_id=row.device_id,
        version=row.version,
        settings=dict(row.settings),
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        source=row.source,
        note=row.note,
        command_id=row.command_id,
        changes=changes,
        outcome=row.outcome,
        outcome_at=row.outcome_at,
        outcome_detail=row.outcome_detail,
    )


async def drift(
    session: AsyncSession, *, device_id: str, desired_version: int, reported_version: int
) -> Drift | None:
    """How far what the station runs lags what is asked of it; None when it runs it.

    Nothing asked yet (version 0) is no drift: the station runs its own settings.
    """
    if desired_version == 0 or reported_version == desired_version:
        return None
    first = None
    if reported_version < desired_version:
        first = await get(session, device_id=device_id, version=reported_version + 1)
    return Drift(desired_version, reported_version, None if first is None else first.changed_at)


async def between(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    device_id: str | None = None,
    limit: int | None = None,
) -> list[Entry]:
    """Versions made in [``since``, ``until``), of one device or all, oldest first.

    Each is read beside the version before it in the same query (no query per row).
    """
    previous = aliased(DeviceConfigVersion)
    query = (
        select(DeviceConfigVersion, previous)
        .outerjoin(
            previous,
            and_(
                previous.device_id == DeviceConfigVersion.device_id,
                previous.version == DeviceConfigVersion.version - 1,
            ),
        )
        .where(DeviceConfigVersion.changed_at >= since, DeviceConfigVersion.changed_at < until)
        .order_by(
            DeviceConfigVersion.changed_at,
            DeviceConfigVersion.device_id,
            DeviceConfigVersion.version,
        )
    )
    if device_id is not None:
        query = query.where(DeviceConfigVersion.device_id == device_id)
    if limit is not None:
        query = query.limit(limit)
    return [_entry(row, before) for row, before in await session.execute(query)]


async def record_outcome(
    session: AsyncSession, *, report: ConfigReport, previously_running: int
) -> None:
    """Keep what the station's report says of its versions, where nothing is kept yet.

    The version the report is about becomes applied (or rejected, with its reason); the
    version it runs is applied (a later rejection may have replaced the retained report that
    said so before the server heard it); the versions between what it ran before
    (``previously_running``) and the newest of those two that still have no word were gone
    past: superseded. The first word wins, so the retained copy handed over again on each
    connect moves nothing.
    """
    now = datetime.now(UTC)
    detail = report.detail[:512] if report.outcome == "rejected" else None
    await _settle(session, report.device_id, report.desired_version, report.outcome, now, detail)
    if report.version != report.desired_version:
        await _settle(session, report.device_id, report.version, "applied", now, None)
    newest = max(report.version, report.desired_version)
    if newest - previously_running > 1:
        await session.execute(
            update(DeviceConfigVersion)
            .where(
                DeviceConfigVersion.device_id == report.device_id,
                DeviceConfigVersion.version > previously_running,
                DeviceConfigVersion.version < newest,
                DeviceConfigVersion.outcome.is_(None),
            )
            .values(outcome="superseded", outcome_at=now, outcome_detail=f"superseded by v{newest}")
        )


async def _settle(
    session: AsyncSession,
    device_id: str,
    version: int,
    outcome: Outcome,
    now: datetime,
    detail: str | None,
) -> None:
    if version < 1:  # 0: nothing applied yet, or a refusal whose version could not be trusted
        return
    await session.execute(
        update(DeviceConfigVersion)
        .where(
            DeviceConfigVersion.device_id == device_id,
            DeviceConfigVersion.version == version,
            DeviceConfigVersion.outcome.is_(None),
        )
        .values(outcome=outcome, outcome_at=now, outcome_detail=detail)
    )


def shown_outcome(entry: Entry, *, running: int) -> Shown:
    """The outcome as a report shows it, given the version the device last said it runs.

    Without a word: ``pending`` when the station has not reached that version; ``unknown``
    when it runs that version or a later one, since every report since migration 0010 gives
    each version up to the one it runs a word, so only a version older than 0010 lacks one.
    """
    known = _STORED.get(entry.outcome or "")
    if known is not None:
        return known
    return "pending" if entry.version > running else "unknown"
