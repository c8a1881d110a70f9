"""The one clock's rules: times named in their zone, dated when not today, UTC outside a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from tests.webui.conftest import LoginAs
from webui.components.browser_time import (
    COOKIE_SCRIPT,
    ZONE_COOKIE,
    known_zone,
    named,
    zone_abbreviation,
    zone_key,
)
from webui.components.values import when, when_ms

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9 all year: never the test machine's zone


def test_a_time_today_is_its_clock_time_and_the_zones_name() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    local = now.astimezone(TOKYO)
    assert named(now, TOKYO) == f"{local:%H:%M:%S} JST"


def test_a_time_on_another_day_carries_its_date() -> None:
    then = datetime.now(UTC) - timedelta(days=3)
    local = then.astimezone(NEW_YORK)
    assert named(then, NEW_YORK) == f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
    assert local.tzname() in ("EST", "EDT")


def test_the_date_is_the_zones_not_utcs() -> None:
    """Today is today where the person sits: 01:00 UTC is yesterday evening in New York."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    one_am = midnight + timedelta(hours=1)
    said = named(one_am, NEW_YORK)
    local = one_am.astimezone(NEW_YORK)
    if local.date() != datetime.now(NEW_YORK).date():
        assert said.startswith(f"{local:%Y-%m-%d} "), said
    assert said.endswith(local.tzname() or ""), said


def test_no_time_is_a_dash() -> None:
    assert named(None, TOKYO) == "—"
    assert when(None) == "—"


def test_outside_a_page_times_read_in_utc_and_say_so() -> None:
    """No browser to ask (a job, a test): UTC, named, never the server's own zone unnamed."""
    assert known_zone() is UTC
    moment = datetime.now(UTC).replace(microsecond=0)
    assert when(moment) == f"{moment:%H:%M:%S} UTC"
    assert when(moment, TOKYO) == named(moment, TOKYO)
    assert when_ms(int(moment.timestamp() * 1000), TOKYO) == named(moment, TOKYO)


def test_zones_are_named_for_the_browser_and_for_people() -> None:
    assert zone_key(NEW_YORK) == "America/New_York"
    assert zone_key(UTC) == "UTC"
    assert zone_abbreviation(TOKYO) == "JST"
    assert zone_abbreviation(UTC) == "UTC"
    summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert zone_abbreviation(NEW_YORK, summer) == "EDT"


def test_every_page_has_the_browser_write_its_zone() -> None:
    """The head script the server reads (``pp_zone``), encoded as the server decodes it."""
    assert f"'{ZONE_COOKIE}=' + encodeURIComponent(" in COOKIE_SCRIPT
    assert "resolvedOptions().timeZone" in COOKIE_SCRIPT


async def test_the_api_answers_in_utc_whatever_zone_the_browser_named(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """The person's zone is for pages: API times stay ISO 8601 in UTC, their offset written."""
    headers = await login_as("ada")
    client.cookies.set(ZONE_COOKIE, "Asia%2FTokyo")
    made = await client.post("/api/v1/devices", json={"id": "kiln-1"}, headers=headers)
    assert made.status_code == 201, made.text
    listed = await client.get("/api/v1/devices", headers=headers)
    created = next(d["created_at"] for d in listed.json() if d["id"] == "kiln-1")
    moment = datetime.fromisoformat(created)
    assert moment.utcoffset() == timedelta(0), created
    assert created.endswith(("Z", "+00:00")), created
