"""The demo's stations through core.station_accounts: kept from run to run, named as the demo's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.db.engine import Database
from core.services import devices
from demo.accounts import STATIONS, WINDOW_STATION, ensure_stations

pytestmark = pytest.mark.backends("one")


async def test_a_second_run_keeps_every_password_and_an_unreadable_file_rekeys_all(
    database: Database, tmp_path: Path
) -> None:
    credentials, window = tmp_path / "stations.json", tmp_path / "window.password"
    first = await ensure_stations(database, credentials, window)
    everyone = (*STATIONS, WINDOW_STATION)
    assert first.renewed == everyone and first.window
    assert window.read_text() == f"{json.loads(credentials.read_text())[WINDOW_STATION]}\n"
    async with database.session() as session:
        assert await devices.opens(session, "press-01", first.credentials["press-01"])

    again = await ensure_stations(database, credentials, window)
    assert again.renewed == () and again.credentials == first.credentials

    credentials.write_text("{ not json")  # a file broken by hand: every station re-keyed
    broken = await ensure_stations(database, credentials, window)
    assert broken.renewed == everyone
    assert set(broken.credentials) == set(STATIONS)
    assert all(broken.credentials[d] != first.credentials[d] for d in STATIONS)
