"""`precisionpulse broker ...`, run as a user would.

The actions are ``main()`` calls in-process (a subprocess costs seconds of imports); ``broker run``
stays a real process, since only one can take Ctrl-C as a user would send it.
"""

from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from broker import config
from broker.credentials import PasswordFile
from core import cli
from core.passwords import verify_mosquitto_hash

TIMEOUT = 60  # seconds; a cold start of the command line imports the database stack


def test_certs_are_written_once_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "certs"
    assert cli.main(["broker", "certs", "--out", str(out), "--client", "press-07"]) == 0
    names = {"ca.crt", "ca.key", "server.crt", "server.key", "press-07.crt", "press-07.key"}
    assert {path.name for path in out.iterdir()} == names
    ca = (out / "ca.crt").read_bytes()
    capsys.readouterr()

    assert cli.main(["broker", "certs", "--out", str(out)]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: a CA exists already"), stderr
    assert "--force" in stderr
    assert (out / "ca.crt").read_bytes() == ca


def test_passwd_reads_the_password_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long secret\n"))
    file = tmp_path / "passwd"
    assert cli.main(["broker", "passwd", "--file", str(file), "--username", "press-07"]) == 0
    assert verify_mosquitto_hash("a long secret", PasswordFile(file).read()["press-07"])
    assert "a long secret" not in capsys.readouterr().out


def test_passwd_refuses_a_bad_username_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long secret\n"))
    argv = ["broker", "passwd", "--file", str(tmp_path / "passwd"), "--username", "a:b"]
    assert cli.main(argv) == 1
    assert capsys.readouterr().err.startswith("error: a broker username must match")


def test_conf_writes_the_deployment_files(tmp_path: Path) -> None:
    assert cli.main(["broker", "conf", "--out", str(tmp_path), "--no-tls", "--port", "1883"]) == 0
    conf = (tmp_path / config.CONF_FILE_NAME).read_text()
    assert conf == config.render_deployment_conf(certs_dir=None, port=1883)
    assert (tmp_path / config.ACL_FILE_NAME).read_text() == config.render_acl()


def test_run_serves_until_ctrl_c(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    command = [sys.executable, "-m", "core.cli", "broker", "run", "--prefer", "amqtt"]
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
            assert ready, "no output from broker run"
            assert process.stdout.readline().startswith("broker (amqtt) listening on 127.0.0.1:")
            assert "created broker user server / " in process.stdout.readline()
            process.send_signal(signal.SIGINT)
            assert process.wait(TIMEOUT) == 0
        finally:
            process.kill()
    assert (tmp_path / "data" / "broker" / "passwd").exists()
