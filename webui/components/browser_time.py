"""Times in the browser's own zone, named: ``14:02:11 CET``.

The server does not know where the person sits, so a page asks the browser once it has
connected (``Intl`` names the zone, such as ``Europe/Berlin``) and keeps the answer in the
browser's storage, so the next page has it at once. Until the browser has answered, and
when it names a zone Python does not know, times read in UTC, which says so too.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nicegui import Client, app

ZONE_KEY = "browser_time_zone"
ZONE_SCRIPT = "Intl.DateTimeFormat().resolvedOptions().timeZone"
# Connecting and answering takes well under a second; a browser that has not answered in
# five will not, and its times stay in UTC.
ASK_WITHIN_S = 5.0


def _zone(name: object) -> tzinfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def known_zone() -> tzinfo:
    """The zone this browser named before, else UTC (call while building a page)."""
    return _zone(app.storage.user.get(ZONE_KEY)) or UTC


async def ask_zone(client: Client) -> tzinfo | None:
    """The zone the browser names, remembered for its next pages; None if it does not say."""
    try:
        async with asyncio.timeout(ASK_WITHIN_S):
            name = await client.run_javascript(ZONE_SCRIPT, timeout=ASK_WITHIN_S)
    except TimeoutError:
        return None
    zone = _zone(name)
    if zone is not None:
        # The task asking was started by the page, so it still knows the page's request.
        app.storage.user[ZONE_KEY] = name
    return zone


def named(moment: datetime | None, zone: tzinfo) -> str:
    """``moment`` in ``zone``, the zone named: the clock time today, else with the date."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    name = local.tzname() or "UTC"
    if local.date() == datetime.now(zone).date():
        return f"{local:%H:%M:%S} {name}"
    return f"{local:%Y-%m-%d %H:%M} {name}"
