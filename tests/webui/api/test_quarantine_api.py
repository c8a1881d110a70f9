"""Quarantined samples through the API: listed with reason and raw, filtered, paged, guarded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.db.engine import Database
from core.db.models import QuarantinedSample
from core.services.telemetry import quarantine
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import LoginAs

pytestmark = pytest.mark.backends("one")

HELD = "/api/v1/telemetry/quarantine"
T0 = datetime(2025, 11, 26, 12, 0, tzinfo=UTC)
HOSTILE = json.dumps({"x": "<img src=x onerror=alert(1)>"})
LONG = json.dumps({f"c{n}": n for n in range(1000)})  # longer than a listing carries


@pytest.fixture
async def held(database: Database) -> None:
    """Three samples of press-07 and one of lathe-1, an hour apart, newest lathe-1's."""
    rows = [
        ("press-07", 1, "bad_value", HOSTILE),
        ("press-07", 2, "bad_channel", '{"Temp!":1}'),
        ("press-07", 3, "too_many_channels", LONG),
        ("lathe-1", 1, "bad_value", '{"x":null}'),
    ]
    async with database.session() as session:
        for hour, (device, seq, reason, raw) in enumerate(rows):
            at = T0 + timedelta(hours=hour)
            session.add(
                QuarantinedSample(
                    device_id=device,
                    stream="s1",
                    seq=seq,
                    ts=at - timedelta(seconds=5),
                    reason=reason,
                    detail=f"detail of {seq}",
                    raw=raw,
                    received_at=at,
                )
            )


@pytest.mark.usefixtures("held")
async def test_an_admin_reads_each_sample_its_reason_and_raw_newest_first(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    listed = await client.get(HELD, headers=admin)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["total"], body["offset"], body["limit"]) == (4, 0, 50)
    assert [(i["device_id"], i["seq"]) for i in body["items"]] == [
        ("lathe-1", 1),
        ("press-07", 3),
        ("press-07", 2),
        ("press-07", 1),
    ]
    hostile = body["items"][-1]
    assert hostile["raw"] == HOSTILE  # as text: the client escapes it, the API keeps it exact
    assert (hostile["reason"], hostile["reason_text"]) == ("bad_value", "Bad value")
    assert datetime.fromisoformat(hostile["ts"]) == T0 - timedelta(seconds=5)
    assert datetime.fromisoformat(hostile["received_at"]) == T0
    clipped = body["items"][1]
    assert clipped["raw_clipped"] and clipped["raw_chars"] == len(LONG)
    assert clipped["raw"] == LONG[: quarantine.RAW_LISTED]

    whole = await client.get(f"{HELD}/press-07/s1/3", headers=admin)
    assert whole.status_code == 200, whole.text
    assert whole.json()["raw"] == LONG and not whole.json()["raw_clipped"]
    assert_rejected(await client.get(f"{HELD}/press-07/s1/9", headers=admin), 404)


@pytest.mark.usefixtures("held")
async def test_filters_and_paging_choose_the_samples(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")

    async def seqs(**params: object) -> tuple[int, list[tuple[str, int]]]:
        answer = await client.get(HELD, params=params, headers=admin)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body["total"], [(i["device_id"], i["seq"]) for i in body["items"]]

    assert await seqs(device_id="press-07", reason="bad_value") == (1, [("press-07", 1)])
    since, until = (T0 + timedelta(hours=1)).isoformat(), (T0 + timedelta(hours=3)).isoformat()
    assert await seqs(since=since, until=until) == (2, [("press-07", 3), ("press-07", 2)])
    assert await seqs(limit=3, offset=0) == (
        4,
        [("lathe-1", 1), ("press-07", 3), ("press-07", 2)],
    )
    assert await seqs(limit=3, offset=3) == (4, [("press-07", 1)])
    assert await seqs(device_id="mill-9") == (0, [])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"reason": "bogus"}, "reason"),
        ({"device_id": "press 07"}, "device_id"),
        ({"since": "2025-11-26T12:00:00"}, "since"),  # no time zone: which noon?
        ({"since": "2025-11-26T13:00:00Z", "until": "2025-11-26T12:00:00Z"}, "until"),
        ({"limit": 0}, "limit"),
        ({"limit": quarantine.MAX_PAGE + 1}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_a_bad_filter_is_refused_with_its_reason(
    client: httpx.AsyncClient, login_as: LoginAs, params: dict[str, object], field: str
) -> None:
    answer = await client.get(HELD, params=params, headers=await login_as("ada"))
    assert_rejected(answer, 422, field)


@pytest.mark.usefixtures("held")
async def test_a_viewer_is_refused_both_routes(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    viewer = await login_as("vic")
    for path in (HELD, f"{HELD}/press-07/s1/1"):
        answer = await client.get(path, headers=viewer)
        assert_rejected(answer, 403)
        assert "telemetry:quarantine" in answer.json()["detail"]
        assert "onerror" not in answer.text
