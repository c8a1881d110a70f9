"""``precisionpulse desktop --theme``: the flag picks the window's theme over PP_WINDOW_THEME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import desktop.window.app
from core import cli
from desktop.window.options import WindowOptions
from desktop.window.theme import THEME_ENV, Scheme


def _opened_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *flags: str) -> list[Any]:
    """The window options ``desktop`` would open the window with (the window itself not run)."""
    seen: list[WindowOptions] = []

    def run_window(_config: Any, _sources: Any, options: WindowOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(desktop.window.app, "run_window", run_window)
    monkeypatch.setenv("PP_DEVICE_PASSWORD", "station-secret")
    argv = ["desktop", "--device", "press-01", "--data-dir", str(tmp_path), *flags]
    assert cli.main(argv) == 0
    return [options.scheme for options in seen]


def test_the_flag_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(THEME_ENV, "light")
    assert _opened_with(monkeypatch, tmp_path, "--theme", "dark") == [Scheme.DARK]


def test_without_the_flag_the_environment_decides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(THEME_ENV, "dark")
    assert _opened_with(monkeypatch, tmp_path) == [Scheme.DARK]
    monkeypatch.delenv(THEME_ENV)
    assert _opened_with(monkeypatch, tmp_path) == [Scheme.SYSTEM]


def test_a_wrong_environment_value_is_an_error_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(THEME_ENV, "purple")
    monkeypatch.setenv("PP_DEVICE_PASSWORD", "station-secret")
    assert cli.main(["desktop", "--device", "press-01", "--data-dir", str(tmp_path)]) == 1
    assert "PP_WINDOW_THEME must be one of" in capsys.readouterr().err
