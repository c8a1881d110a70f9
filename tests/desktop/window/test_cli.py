"""``precisionpulse desktop``: the agent's flags, checked before any Qt is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.cli import main

STATION_FLAGS = (
    "--device",
    "--password-stdin",
    "--broker",
    "--ca-file",
    "--source",
    "--interval",
    "--data-dir",
)


@pytest.mark.parametrize("command", ["agent", "desktop"])
def test_both_station_commands_take_the_same_flags(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    assert all(flag in usage for flag in STATION_FLAGS), usage


def test_desktop_without_a_password_fails_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PP_DEVICE_PASSWORD", raising=False)
    assert main(["desktop", "--device", "press-07"]) == 1
    assert "give the device's password on stdin or in PP_DEVICE_PASSWORD" in capsys.readouterr().err


def test_desktop_with_a_bad_broker_url_fails_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PP_DEVICE_PASSWORD", "secret")
    assert main(["desktop", "--device", "press-07", "--broker", "http://nope"]) == 1
    assert "mqtt:// or mqtts://" in capsys.readouterr().err


def test_the_command_line_loads_qt_only_to_run_the_window() -> None:
    probe = (
        "import contextlib, sys\n"
        "from core.cli import main\n"
        "with contextlib.suppress(SystemExit):\n"
        "    main(['desktop', '--help'])\n"
        "print(sorted(m for m in ('PySide6', 'pyqtgraph', 'qasync') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_desktop_takes_an_idle_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["desktop", "--help"])
    assert "--idle-minutes" in capsys.readouterr().out


def test_desktop_refuses_an_idle_time_that_is_not_positive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PP_DEVICE_PASSWORD", "secret")
    assert main(["desktop", "--device", "press-07", "--idle-minutes", "0"]) == 1
    assert "the idle time must be a positive number of minutes" in capsys.readouterr().err
