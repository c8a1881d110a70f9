"""The availability report: calendar days in a zone, observed time, exact shares online.

mill-01 loses its link from 23:00 to 00:30 UTC, across midnight; dst-01 is offline for an
hour of the day Berlin's clocks go forward; lathe-01 for 756 s, which makes 99.125% online;
kiln-01 is offline now; new-01 was registered at 08:00 and never heard from.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.db.engine import Database
from core.errors import InvalidError
from core.services.reports import availability, span
from tests.core.presence_data import ADMIN, add_device, add_period, at

NOW = at("2026-03-30 12:00")
D = Decimal


@pytest.fixture
async def db(database: Database) -> Database:
    """The history the module docstring tells."""
    for device_id in ("mill-01", "dst-01", "lathe-01", "kiln-01"):
        await add_device(database, device_id, name=device_id.title(), created="2026-03-01 00:00")
    await add_device(database, "new-01", name="", created="2026-03-10 08:00")
    await add_period(database, "mill-01", "lost", "2026-03-09 23:00", "2026-03-10 00:30")
    await add_period(database, "dst-01", "clean", "2026-03-29 10:00", "2026-03-29 11:00")
    await add_period(database, "lathe-01", "stale", "2026-03-10 08:00", "2026-03-10 08:12:36")
    await add_period(database, "lathe-01", "clean", "2026-03-11 01:00", "2026-03-11 01:00:00.5")
    await add_period(database, "lathe-01", "lost", "2026-03-11 23:59", "2026-03-12 00:01")
    await add_period(database, "kiln-01", "lost", "2026-03-30 06:00", None)
    return database


async def _rows(
    database: Database, device_id: str | None, start: str, end: str, tz: str = "UTC"
) -> list[tuple[object, ...]]:
    asked = span.asked(start=at(start), end=at(end), now=NOW)
    async with database.session() as session:
        table = await availability.report(
            session, actor=ADMIN, device_id=device_id, span=asked, zone_name=tz, now=NOW
        )
    return [
        (row["day"], row["observed_s"], row["online_s"], row["offline_s"], row["online_pct"])
        for row in table.rows
    ]


async def test_a_period_across_midnight_counts_on_both_days(db: Database) -> None:
    """60 minutes of 1440 offline on the first day, 30 on the second."""
    assert await _rows(db, "mill-01", "2026-03-09 00:00", "2026-03-11 00:00") == [
        (date(2026, 3, 9), D(86400), D(82800), D(3600), D("95.83")),  # 95.8333…
        (date(2026, 3, 10), D(86400), D(84600), D(1800), D("97.92")),  # 97.9166…
    ]


async def test_another_zone_moves_the_day_boundaries(db: Database) -> None:
    """In Berlin (UTC+1 in early March) the period lies within one day, 00:00 to 01:30, and
    the range's UTC midnights cut an hour off its first local day and leave one of its last."""
    rows = await _rows(db, "mill-01", "2026-03-09 00:00", "2026-03-11 00:00", "Europe/Berlin")
    assert rows == [
        (date(2026, 3, 9), D(82800), D(82800), D(0), D("100.00")),
        (date(2026, 3, 10), D(86400), D(81000), D(5400), D("93.75")),
        (date(2026, 3, 11), D(3600), D(3600), D(0), D("100.00")),
    ]


async def test_the_day_the_clocks_go_forward_has_23_hours(db: Database) -> None:
    """Berlin's 29 March 2026: 23 hours observed, one offline (95.652…%); in UTC the same
    range is an hour of the 28th and 22 hours of the 29th."""
    berlin = await _rows(db, "dst-01", "2026-03-28 23:00", "2026-03-29 22:00", "Europe/Berlin")
    assert berlin == [(date(2026, 3, 29), D(82800), D(79200), D(3600), D("95.65"))]
    utc = await _rows(db, "dst-01", "2026-03-28 23:00", "2026-03-29 22:00")
    assert utc == [
        (date(2026, 3, 28), D(3600), D(3600), D(0), D("100.00")),
        (date(2026, 3, 29), D(79200), D(75600), D(3600), D("95.45")),  # 95.4545…
    ]


async def test_percentages_round_half_up_and_seconds_stay_exact(db: Database) -> None:
    """85,644 of 86,400 s is 99.125% exactly: 99.13 (half even would say 99.12). Two periods
    on the 11th, 0.5 s and the first 60 s of one across midnight: 99.92997…%."""
    assert await _rows(db, "lathe-01", "2026-03-10 00:00", "2026-03-12 00:00") == [
        (date(2026, 3, 10), D(86400), D(85644), D(756), D("99.13")),
        (date(2026, 3, 11), D(86400), D("86339.5"), D("60.5"), D("99.93")),
    ]


async def test_a_range_cut_mid_day_observes_only_its_part(db: Database) -> None:
    """[12:00, 06:00 the next day): half of one day, a quarter of the next."""
    assert await _rows(db, "mill-01", "2026-03-10 12:00", "2026-03-11 06:00") == [
        (date(2026, 3, 10), D(43200), D(43200), D(0), D("100.00")),
        (date(2026, 3, 11), D(21600), D(21600), D(0), D("100.00")),
    ]


async def test_an_open_period_counts_until_now_and_today_ends_now(db: Database) -> None:
    """kiln-01, offline since 06:00 with now 12:00: half of the 43,200 s observed."""
    assert await _rows(db, "kiln-01", "2026-03-30 00:00", "2026-03-31 00:00") == [
        (date(2026, 3, 30), D(43200), D(21600), D(21600), D("50.00")),
    ]


async def test_a_device_is_observed_from_its_registration_and_online_unless_told(
    db: Database,
) -> None:
    """new-01: no day before it was registered, 16 hours of its first, all online."""
    assert await _rows(db, "new-01", "2026-03-09 00:00", "2026-03-11 00:00") == [
        (date(2026, 3, 10), D(57600), D(57600), D(0), D("100.00")),
    ]
    assert await _rows(db, "new-01", "2026-03-01 00:00", "2026-03-05 00:00") == []


async def test_every_device_by_id_then_day(db: Database) -> None:
    """No device named: each registered one, its days in order, names beside them."""
    asked = span.asked(start=at("2026-03-10 00:00"), end=at("2026-03-11 00:00"), now=NOW)
    async with db.session() as session:
        table = await availability.report(session, actor=ADMIN, device_id=None, span=asked, now=NOW)
    found = [(r["device_id"], r["device_name"], r["online_pct"]) for r in table.rows]
    assert found == [
        ("dst-01", "Dst-01", D("100.00")),
        ("kiln-01", "Kiln-01", D("100.00")),
        ("lathe-01", "Lathe-01", D("99.13")),
        ("mill-01", "Mill-01", D("97.92")),
        ("new-01", "", D("100.00")),
    ]
    assert table.filters == {
        "device": "all devices",
        "from": "2026-03-10T00:00:00+00:00",
        "to": "2026-03-11T00:00:00+00:00",
        "tz": "UTC",
    }


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../../etc/passwd", "utc"])
async def test_an_unknown_zone_is_refused_by_name(db: Database, name: str) -> None:
    """InvalidError on ``tz``, naming what was given."""
    with pytest.raises(InvalidError, match=f"unknown time zone '{name}'") as refused:
        await _rows(db, None, "2026-03-10 00:00", "2026-03-11 00:00", name)
    assert refused.value.field == "tz"


async def test_more_device_days_than_a_report_holds_asks_to_narrow(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One device over two days is two rows: a bound of two holds them, of one refuses."""
    monkeypatch.setattr(availability, "MAX_ROWS", 2)
    assert len(await _rows(db, "mill-01", "2026-03-09 00:00", "2026-03-11 00:00")) == 2
    monkeypatch.setattr(availability, "MAX_ROWS", 1)
    with pytest.raises(InvalidError, match=r"asks for 2 rows \(one per device and day\)"):
        await _rows(db, "mill-01", "2026-03-09 00:00", "2026-03-11 00:00")
