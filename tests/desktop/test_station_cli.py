"""``precisionpulse station login`` and ``station users``: exit codes and what they print,
offline, beside a station holding its replica open, and once through the real console script.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import cli
from core.protocol.sync import Answer
from desktop.agent import local_users
from desktop.agent.replica import Replica, replica_path
from desktop.agent.sign_in import sign_in
from tests.desktop.replica_data import DEVICE, PASSWORD, ServerLog, signed_in

PRECISIONPULSE = str(Path(sys.executable).parent / "precisionpulse")
TIMEOUT = 60  # seconds: a cold start of the command line on a slow, shared machine


@dataclass(frozen=True)
class Result:
    """What a run of the command line left."""

    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def station(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Run:
    """``precisionpulse station ARGS --device DEVICE --data-dir tmp_path`` in this process."""

    def run(*args: str, stdin: str = "", **env: str) -> Result:
        with monkeypatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("PP_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            capsys.readouterr()
            where = ("--device", DEVICE, "--data-dir", str(tmp_path))
            code = cli.main(["station", *args, *where])
            out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def log(tmp_path: Path) -> ServerLog:
    """A replica holding ada (Admin), vic (Viewer) and dis (disabled), and the log it came from."""
    log = ServerLog().builtins()
    log.user("ada", roles=("Admin",), display_name="Ada Lovelace")
    log.user("vic", roles=("Viewer",))
    log.user("dis", roles=("Viewer",), is_active=False)
    with Replica(replica_path(tmp_path, DEVICE), device_id=DEVICE) as replica:
        for page in log.pages():
            replica.apply_page(page)
    return log


def login(run: Run, username: str, password: str, **env: str) -> Result:
    return run("login", "--username", username, "--password-stdin", stdin=f"{password}\n", **env)


def test_login_prints_roles_and_permissions(station: Run, log: ServerLog) -> None:
    result = login(station, "vic", PASSWORD)
    assert result.code == 0, result
    shown = dict(line.split(":", 1) for line in result.out.strip().splitlines())
    assert shown["accepted"].strip() == "vic"
    assert shown["roles"].strip() == "Viewer"
    assert shown["permissions"].strip() == "devices:read, telemetry:read"
    admin = login(station, "ada", PASSWORD)
    assert admin.code == 0 and "accepted:     ada (Ada Lovelace)" in admin.out
    assert "users:manage" in admin.out


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("vic", "not the password", "wrong password"),
        ("nobody", PASSWORD, "unknown user"),
        ("dis", PASSWORD, "disabled"),
    ],
)
def test_login_refusals_exit_1_with_the_reason(
    station: Run, log: ServerLog, username: str, password: str, reason: str
) -> None:
    result = login(station, username, password)
    assert result.code == 1 and result.out == ""
    assert result.err == f"error: sign-in refused: {reason}\n"


def test_failures_from_the_command_line_lock_the_name(station: Run, log: ServerLog) -> None:
    for _ in range(2):
        assert login(station, "vic", "guess", PP_LOGIN_MAX_FAILURES="2").code == 1
    locked = login(station, "vic", PASSWORD, PP_LOGIN_MAX_FAILURES="2")
    assert locked.code == 1 and locked.err.startswith("error: sign-in refused: locked until ")


def test_users_lists_people_roles_and_sync_state(
    station: Run, log: ServerLog, tmp_path: Path
) -> None:
    with Replica(replica_path(tmp_path, DEVICE), device_id=DEVICE) as replica:
        ada = sign_in(replica, "ada", PASSWORD, max_failures=5, lock_seconds=30)
        local_users.edit_profile(replica, ada, "Countess")
    result = station("users")
    assert result.code == 0, result
    head, table = result.out.split("\n\n")
    shown = {k: v.strip() for k, v in (line.split(":", 1) for line in head.splitlines())}
    assert shown["device"] == DEVICE and shown["sync cursor"] == str(log.head)
    assert shown["last sync"].endswith(" UTC") and shown["pending edits"] == "1"
    assert shown["users"] == "3"
    rows = [line.split() for line in table.strip().splitlines()]
    assert rows == [
        ["USERNAME", "DISPLAY", "NAME", "ENABLED", "ROLES"],
        ["ada", "Countess", "yes", "Admin"],
        ["dis", "no", "Viewer"],
        ["vic", "yes", "Viewer"],
    ]


def test_a_missing_replica_is_named_and_not_created(station: Run, tmp_path: Path) -> None:
    expected = (
        f"error: no replica for device {DEVICE} in {tmp_path}: start the station once"
        f" (precisionpulse desktop --device {DEVICE} …), or give the --data-dir it uses\n"
    )
    for result in (station("users"), login(station, "ada", PASSWORD)):
        assert result.code == 1 and result.err == expected
    assert list(tmp_path.iterdir()) == []


def test_a_bad_device_id_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli.main(["station", "users", "--device", "../x", "--data-dir", str(tmp_path)])
    assert result == 1
    assert capsys.readouterr().err.startswith("error: device id must match")
    assert list(tmp_path.iterdir()) == []


def test_both_work_beside_a_running_station(tmp_path: Path, log: ServerLog) -> None:
    """The real console script, while the station holds its replica and writes to it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    where = ("--device", DEVICE, "--data-dir", str(tmp_path))
    with Replica(replica_path(tmp_path, DEVICE), device_id=DEVICE) as running:
        ada = signed_in(running.find("ada"))
        edit = running.record_edit(ada, [("user", str(ada.user_id), "display_name", "busy")])
        accepted = subprocess.run(
            [PRECISIONPULSE, "station", "login", "--username", "ada", "--password-stdin", *where],
            input=f"{PASSWORD}\n",
            capture_output=True,
            text=True,
            env=environ,
            timeout=TIMEOUT,
            check=False,
        )
        assert accepted.returncode == 0, accepted
        assert accepted.stdout.startswith("accepted:     ada (busy)\n")
        listed = subprocess.run(
            [PRECISIONPULSE, "station", "users", *where],
            capture_output=True,
            text=True,
            env=environ,
            timeout=TIMEOUT,
            check=False,
        )
        assert listed.returncode == 0, listed
        assert "pending edits:  1" in listed.stdout
        assert running.settle([Answer(edit.change_id, accepted=True)])  # the station goes on
