"""The commands the demo prints are the ones that work, as the person started the demo."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import _parser
from demo.hints import WindowCommand, program, reset_command

ROOT = Path(__file__).resolve().parents[2]


def test_through_make_the_reset_hint_is_the_make_command_that_resets() -> None:
    assert reset_command([], via_make=True) == "make run ARGS=--reset-admin-password"
    given = ["--data-dir", "my data", "--port", "8090"]
    assert reset_command(given, via_make=True) == (
        "make run ARGS='--data-dir '\"'\"'my data'\"'\"' --port 8090 --reset-admin-password'"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_passes_args_to_the_demo_as_the_hint_says() -> None:
    """``make run ARGS=--reset-admin-password`` reaches the demo as that flag (and --via-make)."""
    hint = reset_command([], via_make=True)
    make = subprocess.run(
        [*shlex.split(hint), "-n", "VENV=.venv"], cwd=ROOT, capture_output=True, text=True
    )
    assert make.returncode == 0, make.stderr
    line = next(line for line in make.stdout.splitlines() if " demo " in line)
    words = shlex.split(line)
    assert words[0].endswith("precisionpulse")
    args = _parser().parse_args(words[1:])
    assert args.command == "demo" and args.reset_admin_password and args.via_make


def test_outside_make_the_hint_runs_the_same_program_with_the_same_flags(tmp_path: Path) -> None:
    here = tmp_path / "venv" / "bin" / "precisionpulse"
    command = reset_command(["--broker", "amqtt"], via_make=False, argv0=str(here))
    assert command == f"{here} demo --broker amqtt --reset-admin-password"
    module = reset_command([], via_make=False, argv0=str(ROOT / "core" / "cli.py"))
    assert module == f"{sys.executable} -m core.cli demo --reset-admin-password"
    assert program(str(ROOT / "core" / "cli.py")) == f"{sys.executable} -m core.cli"


def test_the_window_command_names_broker_key_and_password_and_parses() -> None:
    command = WindowCommand(
        "precisionpulse",
        "mqtt://127.0.0.1:1883",
        Path("data/server-signing-key.pub.pem"),
        Path("data/stations"),
    )
    ready = command.line("bench-04", Path("data/bench-04.password"))
    assert ready == (
        "precisionpulse desktop --device bench-04 --broker mqtt://127.0.0.1:1883"
        " --server-key data/server-signing-key.pub.pem --password-stdin < data/bench-04.password"
    )
    elsewhere = WindowCommand("pp", "mqtt://127.0.0.1:4000", Path("x/k.pem"), Path("x/stations"))
    words = shlex.split(elsewhere.line("DEVICE-ID"))
    args = _parser().parse_args(words[1:])
    assert args.command == "desktop" and args.device == "DEVICE-ID"
    assert args.broker == "mqtt://127.0.0.1:4000" and args.server_key == Path("x/k.pem")
    assert args.data_dir == Path("x/stations") and args.password_stdin
    guide = "\n".join(command.guide(None, Path("data/bench-04.password")))
    assert "bench-04" not in guide and "Devices page" in guide  # a disabled window station


def test_the_broker_takes_the_stable_port_else_a_free_one_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from demo import launch

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(launch, "DEFAULT_BROKER_PORT", busy)
        chosen = launch._broker_port(None)
        assert chosen != busy
        assert f"port {busy} is taken (another broker?): the demo's broker uses {chosen}" in (
            capsys.readouterr().out
        )
        with pytest.raises(OSError, match=f"127.0.0.1:{busy} .*choose another --broker-port"):
            launch._broker_port(busy)  # asked for: no quiet substitute
    monkeypatch.setattr(launch, "DEFAULT_BROKER_PORT", chosen)
    assert launch._broker_port(None) == chosen  # free: the stable one, nothing said
    assert capsys.readouterr().out == ""
