"""The time range a report covers, [from, to): the week up to now unless asked, a year at most.

Also the arithmetic the reports share on it: how two ranges overlap, and a length as exact
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from core.errors import InvalidError
from core.services.reports import plain

DEFAULT = timedelta(days=7)  # a week: what "how did last week go" asks, the common question
# A year, leap day included: a year-end review fits; longer would read more periods and days
# than one request (or one page of a PDF) should hold.
LONGEST = timedelta(days=366)
MICROSECOND = timedelta(microseconds=1)  # the resolution of every stored time


@dataclass(frozen=True)
class Span:
    """[start, end), both aware."""

    start: datetime
    end: datetime

    def filters(self) -> dict[str, str]:
        """The range in words, for ``Table.filters``."""
        return {"from": plain(self.start), "to": plain(self.end)}


def asked(*, start: datetime | None, end: datetime | None, now: datetime) -> Span:
    """The range asked for: ``end`` defaults to now, ``start`` to a week before ``end``.

    InvalidError (naming the field) for a range that is empty, backwards or over a year.
    """
    for field, moment in (("from", start), ("to", end)):
        if moment is not None and moment.tzinfo is None:
            msg = f"give '{field}' with its offset, such as 2026-11-30T14:00:00Z"
            raise InvalidError(msg, field=field)
    end = now if end is None else end
    if start is None:
        try:
            start = end - DEFAULT
        except OverflowError:
            msg = f"'to' ({plain(end)}) leaves no week before it: give 'from' too"
            raise InvalidError(msg, field="from") from None
    if start >= end:
        msg = f"'from' ({plain(start)}) must be before 'to' ({plain(end)})"
        raise InvalidError(msg, field="from")
    if end - start > LONGEST:
        msg = (
            f"a report covers at most {LONGEST.days} days; "
            f"{plain(start)} to {plain(end)} is {(end - start) / timedelta(days=1):.2f} days"
        )
        raise InvalidError(msg, field="from")
    return Span(start, end)


def overlap(
    start: datetime, end: datetime, other_start: datetime, other_end: datetime
) -> timedelta:
    """How long [start, end) and [other_start, other_end) share (zero if they do not)."""
    return max(min(end, other_end) - max(start, other_start), timedelta(0))


def seconds(length: timedelta) -> Decimal:
    """``length`` in seconds, exact to the microsecond: 5400, 0.25, never 5400.000000."""
    return Decimal(length // MICROSECOND) / 1_000_000
