"""A report's range: a week up to now unless asked, [from, to) forwards, a year at most."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.errors import InvalidError
from core.services.reports import span

NOW = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def test_the_default_is_the_week_up_to_now() -> None:
    """No ends: [now - 7 days, now); only ``to``: the week before it."""
    assert span.asked(start=None, end=None, now=NOW) == span.Span(NOW - timedelta(days=7), NOW)
    end = datetime(2026, 3, 1, tzinfo=UTC)
    assert span.asked(start=None, end=end, now=NOW).start == datetime(2026, 2, 22, tzinfo=UTC)


def test_from_must_come_before_to() -> None:
    """An empty or backwards range is refused, blaming ``from``."""
    for start in (NOW, NOW + timedelta(microseconds=1)):
        with pytest.raises(InvalidError, match="must be before 'to'") as refused:
            span.asked(start=start, end=NOW, now=NOW)
        assert refused.value.field == "from"


def test_a_range_is_a_year_at_most() -> None:
    """366 days pass (a leap year); a microsecond more does not."""
    year = NOW - timedelta(days=366)
    assert span.asked(start=year, end=NOW, now=NOW).start == year
    with pytest.raises(InvalidError, match="at most 366 days"):
        span.asked(start=year - timedelta(microseconds=1), end=NOW, now=NOW)


def test_a_time_without_its_offset_is_refused() -> None:
    """Naive times name no instant."""
    with pytest.raises(InvalidError, match="with its offset") as refused:
        span.asked(start=None, end=datetime(2026, 3, 1), now=NOW)
    assert refused.value.field == "to"


def test_no_week_before_the_first_day() -> None:
    """``to`` on 0001-01-02 with no ``from``: refused in words, not an overflow."""
    with pytest.raises(InvalidError, match="give 'from' too"):
        span.asked(start=None, end=datetime(1, 1, 2, tzinfo=UTC), now=NOW)


def test_seconds_are_exact_and_plain() -> None:
    """Whole seconds without a fraction, microseconds kept."""
    assert str(span.seconds(timedelta(minutes=90))) == "5400"
    assert span.seconds(timedelta(seconds=3599, microseconds=999750)) == Decimal("3599.99975")
