"""The hybrid logical clock: monotonic, string-ordered, and moved on by remote stamps."""

from __future__ import annotations

import random

import pytest

from core.hlc import Clock, Stamp


def _clock(readings: list[int], node: str = "a") -> Clock:
    wall = iter(readings)
    return Clock(node, wall=lambda: next(wall))


def test_stamps_increase_even_when_the_wall_clock_goes_back() -> None:
    """A wall clock jumping back 5 s still yields strictly increasing stamps."""
    clock = _clock([10_000, 10_001, 5_000, 5_000, 10_001, 10_002])
    stamps = [clock.now() for _ in range(6)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 6
    assert [Stamp.parse(s).wall_ms for s in stamps] == [
        10_000,
        10_001,
        10_001,
        10_001,
        10_001,
        10_002,
    ]


def test_string_order_is_stamp_order() -> None:
    """Sorting the text sorts by wall, then counter, then node."""
    rng = random.Random(7)
    stamps = [
        Stamp(rng.choice([0, 9, 10, 10**14]), rng.choice([0, 1, 10, 999_999]), rng.choice("abz"))
        for _ in range(200)
    ]
    assert sorted(stamps, key=str) == sorted(stamps)
    assert all(Stamp.parse(str(s)) == s for s in stamps)


def test_observe_moves_past_a_remote_stamp() -> None:
    """After seeing a stamp from a clock far ahead, the next local stamp is later still."""
    clock = _clock([1_000, 1_000])
    remote = str(Stamp(9_000, 3, "zz"))
    clock.observe(remote)
    assert clock.now() > remote


def test_observing_an_older_stamp_changes_nothing() -> None:
    """A stale remote stamp does not pull the clock back."""
    clock = _clock([5_000, 5_000])
    first = clock.now()
    clock.observe(str(Stamp(1, 0, "b")))
    assert clock.now() == str(Stamp(5_000, 1, "a")) > first


def test_a_full_counter_borrows_a_millisecond_instead_of_failing() -> None:
    """Seeing a remote stamp with the largest counter still lets this clock issue stamps."""
    clock = _clock([1_000])
    remote = str(Stamp(1_000, 999_999, "b"))
    clock.observe(remote)
    stamp = clock.now()
    assert stamp > remote and Stamp.parse(stamp) == Stamp(1_001, 0, "a")


@pytest.mark.parametrize(
    "args", [(-1, 0, "a"), (10**15, 0, "a"), (0, 10**6, "a"), (0, 0, ""), (0, 0, "a.b")]
)
def test_out_of_range_stamps_are_refused(args: tuple[int, int, str]) -> None:
    """Values that would break the fixed-width string order raise ValueError."""
    with pytest.raises(ValueError):
        Stamp(*args)
