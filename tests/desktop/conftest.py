"""Fixtures of the station tests: a replica file and the server's side of its sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.agent.replica import Replica, replica_path
from tests.desktop.replica_data import DEVICE, ServerLog


@pytest.fixture
def log() -> ServerLog:
    """A server log holding the permission catalogue and the built-in roles."""
    return ServerLog().builtins()


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[Replica]:
    """An empty replica of the test device, closed after the test."""
    with Replica(replica_path(tmp_path, DEVICE), device_id=DEVICE) as opened:
        yield opened
