"""Raw export: exact values in time order, a range that means [start, end), CSV, audit."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry
from core.errors import ForbiddenError, NotFoundError
from core.protocol.telemetry import Batch, Sample
from core.rbac import BUILTIN_ROLES, VIEWER
from core.services.actor import Actor
from core.services.telemetry import export, history, store
from tests.core.history_data import ADMIN, DEVICE, T0, add_device, batch, ms


@pytest.fixture
async def db(database: Database) -> Database:
    """The test database with the device registered."""
    await add_device(database)
    return database


async def _rows(
    database: Database, seconds: float = 3600, channels: list[str] | None = None
) -> list[export.RawRow]:
    end = T0 + timedelta(seconds=seconds)
    found = export.raw_rows(database, device_id=DEVICE, start=T0, end=end, channels=channels)
    return [row async for row in found]


async def _csv(database: Database, seconds: float = 3600) -> list[list[str]]:
    end = T0 + timedelta(seconds=seconds)
    rows = export.raw_rows(database, device_id=DEVICE, start=T0, end=end)
    text = "".join([line async for line in export.csv_lines(rows)])
    return list(csv.reader(text.splitlines()))


async def test_csv_keeps_values_exact(db: Database) -> None:
    """A decimal keeps its scale, a 64-bit integer every digit; exponents are written out."""
    values = {
        "a": Decimal("21.50"),
        "b": Decimal("-0.000100"),
        "c": Decimal("1E+3"),
        "d": 2**63 - 1,
        "e": False,
    }
    when = ms(T0 + timedelta(milliseconds=1234))
    await store.store(db, [Batch(DEVICE, "s1", "replay", (Sample(7, when, values),))])
    header, *lines = await _csv(db)
    assert header == ["ts", "stream", "seq", "channel", "value", "type", "replayed"]
    ts = "2025-11-26T08:00:01.234Z"
    assert lines == [
        [ts, "s1", "7", "a", "21.50", "decimal", "true"],
        [ts, "s1", "7", "b", "-0.000100", "decimal", "true"],
        [ts, "s1", "7", "c", "1000", "decimal", "true"],
        [ts, "s1", "7", "d", "9223372036854775807", "integer", "true"],
        [ts, "s1", "7", "e", "false", "boolean", "true"],
    ]


async def test_rows_are_in_range_and_in_time_seq_stream_channel_order(db: Database) -> None:
    """[start, end): the first instant in, the end instant out; stored order does not matter.

    A sample's values stay together, by channel name.
    """
    late = batch([(30, 3), (3600, 99)], first_seq=5)
    early = batch([(0, 1), (10, 2)], first_seq=1)
    other_stream = batch([(10, 20)], stream="s2", first_seq=1)
    before = batch([(-1, 0)], stream="s3")
    two_channels = Batch(DEVICE, "s4", "live", (Sample(1, ms(T0), {"b": 1, "a": 2}),))
    await store.store(db, [late, other_stream, early, before, two_channels])
    found = [((r.ts - T0).total_seconds(), r.seq, r.channel, r.value) for r in await _rows(db)]
    assert found == [
        (0.0, 1, "temp", 1),
        (0.0, 1, "a", 2),
        (0.0, 1, "b", 1),
        (10.0, 1, "temp", 20),
        (10.0, 2, "temp", 2),
        (30.0, 5, "temp", 3),
    ]


async def test_channels_narrow_the_export(db: Database) -> None:
    rows = Batch(DEVICE, "s1", "live", (Sample(1, ms(T0), {"a": 1, "b": 2, "c": 3}),))
    await store.store(db, [rows])
    assert [r.channel for r in await _rows(db, channels=["c", "a"])] == ["a", "c"]
    assert [r.channel for r in await _rows(db, channels=[])] == ["a", "b", "c"]


async def test_rows_stream_in_chunks_without_losing_or_repeating_any(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "EXPORT_CHUNK", 7)
    await store.store(db, [batch((i, i) for i in range(50))])
    assert [r.value for r in await _rows(db)] == list(range(50))


async def test_start_export_audits_who_exported_what(db: Database) -> None:
    end = T0 + timedelta(days=1)
    async with db.session() as session:
        await export.start_export(
            session, actor=ADMIN, device_id=DEVICE, start=T0, end=end, channels=["temp"]
        )
    async with db.session() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "telemetry.export")
        )
    assert entry is not None
    assert (entry.actor, entry.target_type, entry.target_id) == ("ada", "device", DEVICE)
    assert entry.after == {
        "start": "2025-11-26T08:00:00+00:00",
        "end": "2025-11-27T08:00:00+00:00",
        "channels": ["temp"],
    }


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"actor": Actor("vic", permissions=BUILTIN_ROLES[VIEWER][1])}, ForbiddenError),
        ({"device_id": "ghost"}, NotFoundError),
        ({"end": T0}, history.HistoryError),
        ({"channels": ["ok", "No,Comma"]}, history.HistoryError),
    ],
)
async def test_start_export_refuses_and_audits_nothing(
    db: Database, changes: dict[str, object], error: type[Exception]
) -> None:
    arguments: dict[str, object] = {
        "actor": ADMIN,
        "device_id": DEVICE,
        "start": T0,
        "end": T0 + timedelta(1),
        "channels": None,
    }
    async with db.session() as session:
        with pytest.raises(error):
            await export.start_export(session, **(arguments | changes))  # type: ignore[arg-type]
        assert await session.scalar(select(AuditEntry.id)) is None


def test_filename_names_device_and_range() -> None:
    name = export.export_filename(DEVICE, T0, datetime.fromisoformat("2025-11-27T10:00:00+02:00"))
    assert name == "press-07_20251126T080000Z_20251127T080000Z.csv"
