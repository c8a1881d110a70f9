"""``precisionpulse demo`` is the demo package's own command, found through the entry point."""

from __future__ import annotations

import contextlib
import socket
from importlib.metadata import entry_points
from pathlib import Path

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


def test_the_demo_refuses_to_expose_the_development_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Beyond loopback with the published key: one line, exit 2, nothing prepared."""
    monkeypatch.delenv("PP_SECRET_KEY", raising=False)
    data = tmp_path / "data"
    with socket.socket() as taken:  # were the key let through, the demo would stop at once
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with contextlib.suppress(OSError):
            assert main(["demo", "--host", "0.0.0.0", "--port", port, "--data-dir", str(data)]) == 2
    assert "development PP_SECRET_KEY" in capsys.readouterr().err
    assert not data.exists()
