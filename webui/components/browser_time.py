"""Times in the browser's own zone, named: ``14:02:11 CET``; or in UTC, if the person chose it.

The server does not know where the person sits, so every page's head (``install``) has the
browser write its zone (``Intl`` names it, such as ``Europe/Berlin``) into a cookie: from the
second page of a visit on (the sign-in page is the first), the server knows the zone while it
builds the page. ``ask_zone`` also asks a connected page and keeps the answer in the user's
storage, for a browser whose cookie is missing. Until the browser has said, and when it names a
zone Python does not know, times read in UTC, which says so too.

A person may choose UTC instead (``set_utc``, the clock menu in the header): it is kept with
their user storage and read each time a page is built, so every page follows it from the
next render on.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, tzinfo
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nicegui import Client, app, context, ui

ZONE_KEY = "browser_time_zone"
UTC_KEY = "times_in_utc"  # True: the person chose to read every time in UTC
ZONE_COOKIE = "pp_zone"
ZONE_SCRIPT = "Intl.DateTimeFormat().resolvedOptions().timeZone"
# On every page, before anything else runs. A year, like a setting: the browser rewrites it on
# every page anyway. Lax, like the session cookie, so a followed link still carries it.
COOKIE_SCRIPT = (
    f"<script>document.cookie = '{ZONE_COOKIE}=' + encodeURIComponent({ZONE_SCRIPT})"
    " + '; path=/; max-age=31536000; SameSite=Lax'"
    " + (location.protocol === 'https:' ? '; Secure' : '');</script>"
)
# Connecting and answering takes well under a second; a browser that has not answered in
# five will not, and its times stay in UTC.
ASK_WITHIN_S = 5.0


def install() -> None:
    """Have every page's browser tell its zone in a cookie (call once, at composition)."""
    ui.add_head_html(COOKIE_SCRIPT, shared=True)


def _zone(name: object) -> tzinfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _user_storage() -> dict[str, object]:
    """This page's user storage; empty outside a page (nothing known, nothing kept)."""
    try:
        return app.storage.user
    except (RuntimeError, AssertionError):  # no page's request, or no user storage yet
        return {}


def _cookie_zone() -> tzinfo | None:
    try:
        request = context.client.request
    except RuntimeError:  # not building or updating a page
        return None
    if request is None:
        return None
    return _zone(unquote(request.cookies.get(ZONE_COOKIE, "")))  # the script encoded its "/"


def browser_zone() -> tzinfo | None:
    """The zone this browser last named (its cookie, else its answer to ``ask_zone``)."""
    return _cookie_zone() or _zone(_user_storage().get(ZONE_KEY))


def shows_utc() -> bool:
    """Whether the person chose to read times in UTC."""
    return _user_storage().get(UTC_KEY) is True


def set_utc(utc: bool) -> None:
    """Keep the person's choice: every time in UTC (True) or in the browser's zone."""
    app.storage.user[UTC_KEY] = utc


def known_zone() -> tzinfo:
    """The zone this page's times read in: UTC if chosen or unknown, else the browser's.

    Read it while building or updating a page; outside one it is UTC.
    """
    if shows_utc():
        return UTC
    return browser_zone() or UTC


async def ask_zone(client: Client) -> tzinfo | None:
    """The zone times read in once the browser named its own; None if it does not say.

    The browser's answer is remembered for its next pages; a person who chose UTC gets UTC.
    """
    try:
        async with asyncio.timeout(ASK_WITHIN_S):
            name = await client.run_javascript(ZONE_SCRIPT, timeout=ASK_WITHIN_S)
    except TimeoutError:
        return None
    zone = _zone(name)
    if zone is not None:
        # The task asking was started by the page, so it still knows the page's request.
        app.storage.user[ZONE_KEY] = name
    return UTC if zone is not None and shows_utc() else zone


def zone_key(zone: tzinfo) -> str:
    """The IANA name of ``zone`` (``America/New_York``), which browsers format times in."""
    return getattr(zone, "key", None) or "UTC"


def zone_abbreviation(zone: tzinfo, moment: datetime | None = None) -> str:
    """What ``named`` writes after a time in ``zone`` (``EST``), at ``moment`` or now."""
    return (moment or datetime.now(UTC)).astimezone(zone).tzname() or "UTC"


def named(moment: datetime | None, zone: tzinfo) -> str:
    """``moment`` in ``zone``, the zone named: the clock time today, else with the date."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    name = local.tzname() or "UTC"
    if local.date() == datetime.now(zone).date():
        return f"{local:%H:%M:%S} {name}"
    return f"{local:%Y-%m-%d %H:%M} {name}"
