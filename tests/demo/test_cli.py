"""``precisionpulse demo`` is the demo package's own command, found through the entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from core.cli import COMMAND_GROUP, main


def test_the_demo_command_comes_from_the_demo_package(capsys: pytest.CaptureFixture[str]) -> None:
    """Its flags are there, and it is registered by demo.cli (webui no longer carries it)."""
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    assert "--reset-admin-password" in usage and "--broker" in usage
    registered = {e.name: e.value for e in entry_points(group=COMMAND_GROUP)}
    assert registered["demo"] == "demo.cli:register"
