"""History page: a range downsampled on the server, and the raw CSV for reports:read."""

from __future__ import annotations

import time
from decimal import Decimal

from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.protocol.telemetry import Batch, Sample
from core.services.telemetry import store
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_live_pages import _register
from tests.webui.pages.test_login import signed_in


async def _seed(database: Database) -> None:
    """Ten minutes of one sample a second, the last 60 replayed."""
    await _register(database, "kiln-1")
    now_ms = int(time.time() * 1000)
    samples = [
        Sample(n, now_ms - (600 - n) * 1000, {"temp": Decimal(20 + n % 7) + Decimal("0.25")})
        for n in range(1, 601)
    ]
    await store.store(
        database,
        [
            Batch("kiln-1", "s1", "live", tuple(samples[:540])),
            Batch("kiln-1", "s1", "replay", tuple(samples[540:])),
        ],
    )


async def test_a_range_is_drawn_from_buckets_not_rows(user: User, database: Database) -> None:
    """600 samples over the last hour come back as at most 500 buckets with min/max/mean."""
    await _seed(database)
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1/history")
    # The page opens filled: the only channel, over the last hour, without a click.
    await user.should_see(content="temp: 600 samples", marker="history-summary", retries=30)
    chart = user.find(marker="history-chart").elements.pop()
    assert isinstance(chart, ui.echart)
    series = {s["name"]: s["data"] for s in chart.options["series"]}
    assert 0 < len(series["temp mean"]) <= 500
    assert min(v for _, v in series["temp min"]) == 20.25
    assert max(v for _, v in series["temp max"]) == 26.25
    assert series["temp replayed"], "replayed buckets are marked"
    await user.should_not_see(marker="history-export")
    response = await user.http_client.get(
        "/devices/kiln-1/export.csv",
        params={"start": "2020-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"},
    )
    assert response.status_code == 403


async def test_admin_exports_the_exact_raw_range(user: User, database: Database) -> None:
    """The CSV holds every sample in the range with its scale kept."""
    await _seed(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1/history")
    user.find(marker="history-export").click()
    response = await user.download.next(timeout=5)
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0] == "ts,stream,seq,channel,value,type,replayed"
    assert len(lines) == 601
    assert lines[1].endswith(",s1,1,temp,21.25,decimal,false")
    assert lines[-1].endswith(",s1,600,temp,25.25,decimal,true")


async def test_a_custom_range_must_be_a_time(user: User, database: Database) -> None:
    """A mistyped custom time is explained, and nothing is drawn."""
    await _seed(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1/history")
    user.find(marker="history-range").elements.pop().value = "Custom"
    user.find(marker="history-start").clear().type("yesterday")
    user.find(marker="history-show").click()
    await user.should_see("write the time as YYYY-MM-DD HH:MM", retries=20)
