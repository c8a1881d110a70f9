"""A station refuses to send its password over plain MQTT to another machine unless told to."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import cli
from core.settings import Settings
from desktop.cli import _station_config


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_DEVICE_PASSWORD", "a-device-password")


@pytest.mark.parametrize("command", ["agent", "simulate"])
def test_plain_mqtt_to_another_machine_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    argv = [command, "--broker", "mqtt://10.0.0.5:1883", "--data-dir", str(tmp_path / "data")]
    argv += ["--device", "press-07"] if command == "agent" else ["--devices", "1", "--rate", "1"]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: refusing plain MQTT to 10.0.0.5"), error
    assert "--allow-plaintext" in error
    assert not (tmp_path / "data").exists()


def test_allow_plaintext_lets_it_through(tmp_path: Path) -> None:
    parser = cli._parser()
    base = ["agent", "--device", "press-07", "--data-dir", str(tmp_path)]
    args = parser.parse_args([*base, "--broker", "mqtt://10.0.0.5", "--allow-plaintext"])
    config, _ = _station_config(Settings(), args)
    assert config.endpoint.host == "10.0.0.5" and not config.endpoint.tls

    for broker in ("mqtt://127.0.0.1:1883", "mqtts://broker.example.com"):  # always fine
        config, _ = _station_config(Settings(), parser.parse_args([*base, "--broker", broker]))
