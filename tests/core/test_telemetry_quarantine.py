"""Quarantined samples read back for admins: filtered, newest first, paged, raw kept exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.db.engine import Database
from core.db.models import QuarantinedSample
from core.errors import ForbiddenError, InvalidError, NotFoundError
from core.protocol.telemetry import Batch, QuarantineReason, parse_batch
from core.rbac import BUILTIN_ROLES, VIEWER
from core.services.actor import Actor
from core.services.telemetry import quarantine, store
from core.services.telemetry.quarantine import Filters

ADA = Actor(name="ada", permissions=frozenset({quarantine.PERMISSION}))
VIC = Actor(name="vic", permissions=BUILTIN_ROLES[VIEWER][1])
T0 = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)


def _held(device: str, seq: int, reason: str, received: datetime, raw: str = "{}") -> object:
    return QuarantinedSample(
        device_id=device,
        stream="s1",
        seq=seq,
        ts=received - timedelta(seconds=1),
        reason=reason,
        detail=f"detail {seq}",
        raw=raw,
        received_at=received,
    )


async def _hold(database: Database, *rows: object) -> None:
    """Rows as ``store`` leaves them, with received times of the test's choosing."""
    async with database.session() as session:
        session.add_all(rows)


async def _page(
    database: Database, filters: Filters | None = None, **paging: int
) -> quarantine.Page:
    async with database.session() as session:
        return await quarantine.page(session, actor=ADA, filters=filters, **paging)


async def test_a_sample_quarantined_at_ingest_is_listed_with_reason_and_raw(
    database: Database,
) -> None:
    message = {
        "v": 1,
        "type": "telemetry",
        "device_id": "press-07",
        "stream": "s1",
        "origin": "live",
        "samples": [
            {"seq": 1, "ts": 1_764_158_400_000, "values": {"temp": "41.3750"}},
            {"seq": 2, "ts": 1_764_158_401_000, "values": {"Temp!": 1}},
            {"seq": 3, "ts": 1_764_158_402_000, "values": {"temp": "<script>", "n": 2}},
        ],
    }
    batch = parse_batch(json.dumps(message).encode(), "press-07")
    assert isinstance(batch, Batch)
    await store.store(database, [batch])

    shown = await _page(database)
    assert shown.total == 2 and not shown.more
    newest, older = shown.rows  # one batch, one received time: the later seq first
    assert (newest.seq, newest.reason, newest.detail) == (
        3,
        "bad_value",
        "channel 'temp': not a decimal string",
    )
    assert json.loads(newest.raw) == {"temp": "<script>", "n": 2}
    assert (older.seq, older.reason, older.detail) == (2, "bad_channel", "channel name 'Temp!'")
    assert older.ts == datetime(2025, 11, 26, 12, 0, 1, tzinfo=UTC)
    assert older.received_at >= older.ts and not older.clipped
    async with database.session() as session:
        whole = await quarantine.sample(
            session, actor=ADA, device_id="press-07", stream="s1", seq=2
        )
    assert whole == older
    assert quarantine.reason_of(whole.reason).label == "Bad channel name"


async def test_filters_narrow_by_device_reason_and_time_and_count_all_that_match(
    database: Database,
) -> None:
    await _hold(
        database,
        _held("press-07", 1, "bad_value", T0),
        _held("press-07", 2, "bad_channel", T0 + timedelta(hours=1)),
        _held("press-07", 3, "bad_value", T0 + timedelta(hours=2)),
        _held("lathe-1", 1, "too_many_channels", T0 + timedelta(hours=3)),
    )
    everything = await _page(database)
    assert [(r.device_id, r.seq) for r in everything.rows] == [
        ("lathe-1", 1),
        ("press-07", 3),
        ("press-07", 2),
        ("press-07", 1),
    ]
    mine = await _page(database, Filters(device_id="press-07", reason="bad_value"))
    assert [r.seq for r in mine.rows] == [3, 1] and mine.total == 2
    window = Filters(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))
    assert [r.seq for r in (await _page(database, window)).rows] == [3, 2]  # until excluded
    assert (await _page(database, Filters(device_id="mill-9"))).total == 0
    async with database.session() as session:
        assert await quarantine.by_device(session, actor=ADA) == {"lathe-1": 1, "press-07": 3}
        assert await quarantine.count(session, actor=ADA, device_id="press-07") == 3
        assert await quarantine.count(session, actor=ADA, device_id="mill-9") == 0


async def test_pages_run_newest_first_each_sample_once(database: Database) -> None:
    await _hold(
        database, *(_held("press-07", n, "bad_value", T0 + timedelta(seconds=n)) for n in range(7))
    )
    pages = [await _page(database, limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [[r.seq for r in p.rows] for p in pages] == [[6, 5, 4], [3, 2, 1], [0]]
    assert [p.more for p in pages] == [True, True, False]
    assert {p.total for p in pages} == {7}


async def test_a_long_raw_is_clipped_when_listed_and_whole_alone(database: Database) -> None:
    raw = json.dumps({f"c{n}": "x" * 90 for n in range(1000)})  # ~100 KB, one sample
    await _hold(database, _held("press-07", 1, "too_many_channels", T0, raw))
    [listed] = (await _page(database)).rows
    assert listed.raw == raw[: quarantine.RAW_LISTED] and listed.raw_chars == len(raw)
    assert listed.clipped
    async with database.session() as session:
        whole = await quarantine.sample(
            session, actor=ADA, device_id="press-07", stream="s1", seq=1
        )
    assert whole.raw == raw and not whole.clipped


async def test_a_viewer_is_refused_every_read(database: Database) -> None:
    await _hold(database, _held("press-07", 1, "bad_value", T0))
    async with database.session() as session:
        with pytest.raises(ForbiddenError, match="telemetry:quarantine"):
            await quarantine.page(session, actor=VIC)
        with pytest.raises(ForbiddenError):
            await quarantine.sample(session, actor=VIC, device_id="press-07", stream="s1", seq=1)
        with pytest.raises(ForbiddenError):
            await quarantine.by_device(session, actor=VIC)
        with pytest.raises(ForbiddenError):
            await quarantine.count(session, actor=VIC, device_id="press-07")


@pytest.mark.parametrize(
    ("device", "stream"), [("press-07", "s2"), ("press\x00", "s1"), ("press-07", "s\x001")]
)
async def test_a_sample_not_held_is_not_found(database: Database, device: str, stream: str) -> None:
    await _hold(database, _held("press-07", 1, "bad_value", T0))
    async with database.session() as session:
        with pytest.raises(NotFoundError):
            await quarantine.sample(session, actor=ADA, device_id=device, stream=stream, seq=1)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"device_id": "press 07"}, "device_id"),
        ({"reason": "bad"}, "reason"),
        ({"since": datetime(2025, 1, 1)}, "since"),  # naive on purpose
        ({"since": T0, "until": T0}, "until"),
    ],
)
def test_a_bad_filter_is_refused_naming_its_field(filters: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidError) as refused:
        Filters(**filters)  # type: ignore[arg-type]
    assert refused.value.field == field


@pytest.mark.parametrize(("paging", "field"), [({"limit": 0}, "limit"), ({"offset": -1}, "offset")])
async def test_bad_paging_is_refused(
    database: Database, paging: dict[str, int], field: str
) -> None:
    with pytest.raises(InvalidError) as refused:
        await _page(database, **paging)
    assert refused.value.field == field


def test_every_reason_has_words() -> None:
    assert set(quarantine.REASONS) == set(QuarantineReason)
    assert quarantine.reason_of("new_rule").label == "new_rule"
