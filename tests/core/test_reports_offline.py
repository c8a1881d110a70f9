"""The offline-events report: which periods, in what order, and their exact figures.

press-01 loses its link for 90 minutes across midnight (P1), stops cleanly for 10.5 s (P2),
goes stale for 15 minutes (P3), and is offline now (P4, open). Replayed samples fall inside
and just outside P1; gaps are reported after each reconnect.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.db.engine import Database
from core.errors import ForbiddenError, InvalidError, NotFoundError
from core.services.actor import Actor
from core.services.reports import offline, span
from tests.core.presence_data import (
    ADMIN,
    add_device,
    add_gap,
    add_period,
    add_samples,
    at,
)

NOW = at("2026-03-12 12:00")


@pytest.fixture
async def db(database: Database) -> Database:
    """The history the module docstring tells."""
    await add_device(database, "press-01", name="Press 1", created="2026-03-01 00:00")
    await add_device(database, "press-02", name="", created="2026-03-10 08:00")
    await add_period(database, "press-01", "lost", "2026-03-09 23:00", "2026-03-10 00:30")  # P1
    await add_period(
        database, "press-01", "clean", "2026-03-10 06:00", "2026-03-10 06:00:10.500"
    )  # P2
    await add_period(database, "press-01", "stale", "2026-03-10 12:00", "2026-03-10 12:15")  # P3
    await add_period(database, "press-01", "lost", "2026-03-12 11:00:00.000250", None)  # P4
    await add_period(database, "press-02", "stale", "2026-03-11 10:00", "2026-03-11 10:45")
    replayed = [
        "2026-03-09 22:59:59.999",  # before P1
        "2026-03-09 23:00",  # P1's first instant: in
        "2026-03-10 00:29:59.999",  # in P1
        "2026-03-10 00:30",  # P1's end: out
        "2026-03-10 06:00:05",  # in P2
        "2026-03-12 11:30",  # in P4, open
        "2026-03-12 12:30",  # after now: not yet part of P4
    ]
    await add_samples(database, "press-01", "replay", replayed, first_seq=1)
    live = ["2026-03-09 23:45"]  # in P1, but live: not replayed
    await add_samples(database, "press-01", "live", live, first_seq=1)
    await add_samples(database, "press-02", "replay", ["2026-03-09 23:30"], first_seq=1)
    await add_gap(database, "press-01", 10, 19, "2026-03-09 22:00")  # before P1
    await add_gap(database, "press-01", 100, 149, "2026-03-10 00:31")  # P1's: 50
    await add_gap(database, "press-01", 200, 202, "2026-03-10 06:00:11")  # P2's: 3
    await add_gap(database, "press-01", 300, 300, "2026-03-10 12:20")  # P3's: 1
    await add_gap(database, "press-01", 5, 9, "2026-03-11 09:00", stream="s2")  # P3's: 5
    await add_gap(database, "press-01", 400, 409, "2026-03-12 11:10")  # P4's: 10
    await add_gap(database, "press-02", 1, 7, "2026-03-10 00:40")  # another device's
    return database


async def _rows(
    database: Database, start: str, end: str, device_id: str | None = None
) -> list[tuple[object, ...]]:
    asked = span.asked(start=at(start), end=at(end), now=NOW)
    async with database.session() as session:
        table = await offline.report(session, actor=ADMIN, device_id=device_id, span=asked, now=NOW)
    return [tuple(row[c.key] for c in offline.COLUMNS) for row in table.rows]


async def test_periods_overlapping_a_day_with_their_replays_and_drops(db: Database) -> None:
    """P1 began the day before but overlaps it; P4 and press-02's period lie outside it.

    P3's drops are those reported until P4 began, two days later, on any stream.
    """
    assert await _rows(db, "2026-03-10 00:00", "2026-03-11 00:00") == [
        (
            "press-01", "Press 1", at("2026-03-09 23:00"), at("2026-03-10 00:30"),
            Decimal(5400), "lost", 2, 50,
        ),
        (
            "press-01", "Press 1", at("2026-03-10 06:00"), at("2026-03-10 06:00:10.5"),
            Decimal("10.5"), "clean", 1, 3,
        ),
        (
            "press-01", "Press 1", at("2026-03-10 12:00"), at("2026-03-10 12:15"),
            Decimal(900), "stale", 0, 6,
        ),
    ]  # fmt: skip


async def test_an_open_period_lasts_until_now(db: Database) -> None:
    """P4 has no end: its duration, replays and drops run to now, to the microsecond."""
    assert await _rows(db, "2026-03-12 00:00", "2026-03-13 00:00", "press-01") == [
        (
            "press-01", "Press 1", at("2026-03-12 11:00:00.000250"), None,
            Decimal("3599.99975"), "lost", 1, 10,
        ),
    ]  # fmt: skip


async def test_one_device_and_every_device(db: Database) -> None:
    """A device named: its periods alone; none named: every device's, by start."""
    only = await _rows(db, "2026-03-11 00:00", "2026-03-12 00:00", "press-02")
    assert only == [
        (
            "press-02", "", at("2026-03-11 10:00"), at("2026-03-11 10:45"),
            Decimal(2700), "stale", 0, 0,
        )
    ]  # fmt: skip
    every = await _rows(db, "2026-03-09 00:00", "2026-03-13 00:00")
    assert [(r[0], r[5]) for r in every] == [
        ("press-01", "lost"),
        ("press-01", "clean"),
        ("press-01", "stale"),
        ("press-02", "stale"),
        ("press-01", "lost"),
    ]
    # press-02 reported its gap before its period began: none of that period's doing.
    assert every[3][7] == 0


async def test_a_range_that_ends_at_a_start_or_begins_at_an_end_leaves_that_period_out(
    db: Database,
) -> None:
    """[from, to): P1 ending at from, P2 starting at to, neither overlaps."""
    assert await _rows(db, "2026-03-10 00:30", "2026-03-10 06:00") == []


async def test_filters_say_what_was_asked(db: Database) -> None:
    """The device and the range, in words."""
    asked = span.asked(start=None, end=at("2026-03-11 00:00"), now=NOW)
    async with db.session() as session:
        every = await offline.report(session, actor=ADMIN, device_id=None, span=asked, now=NOW)
        one = await offline.report(session, actor=ADMIN, device_id="press-01", span=asked, now=NOW)
    assert every.filters == {
        "device": "all devices",
        "from": "2026-03-04T00:00:00+00:00",
        "to": "2026-03-11T00:00:00+00:00",
    }
    assert one.filters["device"] == "press-01"


async def test_an_unknown_device_is_not_found(db: Database) -> None:
    """A 404's reason, not an empty report."""
    asked = span.asked(start=None, end=None, now=NOW)
    async with db.session() as session:
        with pytest.raises(NotFoundError, match="no device with id 'press-99'"):
            await offline.report(session, actor=ADMIN, device_id="press-99", span=asked, now=NOW)


@pytest.mark.parametrize(
    "held", [{"devices:read"}, {"reports:read"}], ids=["no reports:read", "no devices:read"]
)
async def test_both_permissions_are_needed(db: Database, held: set[str]) -> None:
    """reports:read to run a report, devices:read for what this one shows."""
    asked = span.asked(start=None, end=None, now=NOW)
    actor = Actor("someone", permissions=frozenset(held))
    async with db.session() as session:
        with pytest.raises(ForbiddenError):
            await offline.report(session, actor=actor, device_id=None, span=asked, now=NOW)


async def test_more_periods_than_a_report_holds_asks_to_narrow(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three periods on the 10th: a bound of three holds them, a bound of two refuses."""
    monkeypatch.setattr(offline, "MAX_ROWS", 3)
    assert len(await _rows(db, "2026-03-10 00:00", "2026-03-11 00:00")) == 3
    monkeypatch.setattr(offline, "MAX_ROWS", 2)
    with pytest.raises(InvalidError, match="more than 2 offline periods match"):
        await _rows(db, "2026-03-10 00:00", "2026-03-11 00:00")
