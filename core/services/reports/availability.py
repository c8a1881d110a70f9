"""The availability report: the share of each calendar day each device was online.

Days are calendar days in the zone asked for (an IANA name, UTC by default), so a day in
Europe/Berlin runs from its midnight to the next (23 or 25 hours when the clocks change).
For each device and day:

- observed time: the part of the day inside [from, to), after the device was registered
  (``devices.created_at``) and before now. A day with none is left out.
- offline time: how much of the observed time the device's offline periods cover (an open
  period lasts until now).
- online time: observed minus offline; ``online_pct`` = 100 * online / observed.

A device is online unless an offline period says otherwise: presence records a period when
a station's will, clean stop or stale heartbeat says it went away (see
``core.services.offline_events``), and nothing when it never spoke. So a device registered
but never seen reads 100% online; its last-seen time on the device list tells that story.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Device, OfflineEvent
from core.errors import InvalidError
from core.services import devices, offline_events
from core.services.actor import Actor
from core.services.reports import Column, Table, Value, require
from core.services.reports.offline import ALL_DEVICES
from core.services.reports.span import MICROSECOND, Span, overlap, seconds

NAME = "availability"
COLUMNS = (
    Column("device_id", "Device"),
    Column("device_name", "Name"),
    Column("day", "Day"),
    Column("observed_s", "Observed", "s"),
    Column("online_s", "Online", "s"),
    Column("offline_s", "Offline", "s"),
    Column("online_pct", "Online", "%"),
)
DEFAULT_ZONE = "UTC"
# Percentages to two places, rounded half up from the exact ratio (integer arithmetic, no
# float, no double rounding): 99.125 reads 99.13, as people round by hand.
PERCENT_PLACES = 2
_HUNDREDTHS = 100 * 10**PERCENT_PLACES  # 100 %, in hundredths of a percent
# Device-days a report holds at most: a thousand devices for three months. Each is worked
# out here, in the request; past this the caller narrows the range or names a device.
MAX_ROWS = 100_000
MAX_ZONE_NAME = 64  # the longest IANA name is 32 characters; anything longer is no zone


def zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (such as Europe/Berlin), or InvalidError naming it."""
    try:
        if len(name) > MAX_ZONE_NAME or "\x00" in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone '{name}': give an IANA name such as Europe/Berlin or UTC"
        raise InvalidError(msg, field="tz") from None


def _midnight(day: date, where: tzinfo) -> datetime:
    """When ``day`` begins in ``where``, in UTC (the first instant after a skipped midnight)."""
    return datetime.combine(day, time(), tzinfo=where).astimezone(UTC)


def _days(
    start: datetime, end: datetime, where: tzinfo
) -> Iterator[tuple[date, datetime, datetime]]:
    """Each calendar day of ``where`` that [start, end) touches, with its bounds in UTC."""
    day = start.astimezone(where).date()
    last = (end - MICROSECOND).astimezone(where).date()
    while day <= last:
        following = day + timedelta(days=1)
        yield day, _midnight(day, where), _midnight(following, where)
        day = following


def percent(part: timedelta, whole: timedelta) -> Decimal:
    """100 * part / whole, to ``PERCENT_PLACES`` places, half up, exactly."""
    hundredths, rest = divmod(_HUNDREDTHS * (part // MICROSECOND), whole // MICROSECOND)
    if 2 * rest >= whole // MICROSECOND:
        hundredths += 1
    return Decimal(hundredths).scaleb(-PERCENT_PLACES)


def _device_rows(
    device: Device, periods: Sequence[OfflineEvent], span: Span, where: tzinfo, now: datetime
) -> Iterator[dict[str, Value]]:
    """One row per day the device was observed; ``periods`` its own, in start order."""
    first = max(span.start, device.created_at)
    last = min(span.end, now)
    if first >= last:
        return
    spans = [(p.started_at, p.ended_at or now) for p in periods]
    earliest = 0  # periods before it ended before the current day: days only move forward
    for day, day_start, day_end in _days(first, last, where):
        low, high = max(day_start, first), min(day_end, last)
        while earliest < len(spans) and spans[earliest][1] <= low:
            earliest += 1
        offline = timedelta(0)
        for started, ended in spans[earliest:]:
            if started >= high:
                break
            offline += overlap(started, ended, low, high)
        observed = high - low
        yield {
            "device_id": device.id,
            "device_name": device.name,
            "day": day,
            "observed_s": seconds(observed),
            "online_s": seconds(observed - offline),
            "offline_s": seconds(offline),
            "online_pct": percent(observed - offline, observed),
        }


async def report(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str | None,
    span: Span,
    zone_name: str = DEFAULT_ZONE,
    now: datetime,
) -> Table:
    """Each device's (or ``device_id``'s) online share per day of ``zone_name`` in ``span``."""
    require(actor, "devices:read")
    where = zone(zone_name)
    if device_id is None:
        fleet = await devices.list_devices(session, actor=actor)
    else:
        fleet = [await devices.get_device(session, actor=actor, device_id=device_id)]
    days = sum(1 for _ in _days(span.start, span.end, where))
    if len(fleet) * days > MAX_ROWS:
        msg = (
            f"this asks for {len(fleet) * days:,} rows (one per device and day), more than "
            f"{MAX_ROWS:,}: choose a shorter period or one device"
        )
        raise InvalidError(msg, field="from")
    by_device: dict[str, list[OfflineEvent]] = defaultdict(list)
    for period in await offline_events.overlapping(
        session, actor=actor, device_id=device_id, start=span.start, end=span.end
    ):
        by_device[period.device_id].append(period)
    rows = [row for one in fleet for row in _device_rows(one, by_device[one.id], span, where, now)]
    return Table(
        name=NAME,
        title="Availability",
        columns=COLUMNS,
        rows=tuple(rows),
        filters={"device": device_id or ALL_DEVICES, **span.filters(), "tz": zone_name},
    )
