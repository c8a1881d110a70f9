"""``device ensure`` and ``signing-key``: what the compose init job runs on every start."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core import cli
from core.db.engine import Database
from core.services import devices
from core.services.actor import Actor

Run = Callable[..., tuple[int, str, str]]
ADMIN = Actor(name="test", permissions=frozenset({"devices:read", "devices:write"}))


@pytest.fixture
def run(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """``precisionpulse ARGS`` in this process, on the test's database and key files."""

    def run_main(*args: str) -> tuple[int, str, str]:
        with monkeypatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("PP_")]:
                patch.delenv(name)
            patch.setenv("PP_DATABASE_URL", database_url)
            patch.setenv("PP_SIGNING_KEY_FILE", str(tmp_path / "server" / "signing.pem"))
            patch.setattr(sys, "stdin", io.StringIO(""))
            capsys.readouterr()
            code = cli.main(list(args))
            out, err = capsys.readouterr()
        return code, out, err

    return run_main


def _opens(database_url: str, credentials: dict[str, str]) -> dict[str, bool | None]:
    async def check() -> dict[str, bool | None]:
        database = Database(database_url)
        try:
            async with database.session() as session:
                return {d: await devices.opens(session, d, p) for d, p in credentials.items()}
        finally:
            await database.close()

    return asyncio.run(check())


def test_ensure_registers_then_changes_nothing(run: Run, database_url: str, tmp_path: Path) -> None:
    """The first run registers the stations; the second keeps file, passwords and audit log."""
    file = tmp_path / "fleet" / "credentials.json"
    code, out, err = run("device", "ensure", "--count", "3", "--credentials", str(file))
    assert code == 0, err
    assert "registered sim-001, sim-002, sim-003" in out
    credentials = json.loads(file.read_text())
    assert sorted(credentials) == ["sim-001", "sim-002", "sim-003"]
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert _opens(database_url, credentials) == dict.fromkeys(credentials, True)

    before = (file.read_bytes(), file.stat().st_mtime_ns)
    code, out, err = run("device", "ensure", "--count", "3", "--credentials", str(file))
    assert code == 0, err
    assert "registered none; new passwords for none" in out
    assert (file.read_bytes(), file.stat().st_mtime_ns) == before


def test_ensure_rekeys_only_what_no_longer_opens(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    """A lost entry or a password rotated elsewhere gets a new one; the rest are kept."""
    file = tmp_path / "credentials.json"
    assert run("device", "ensure", "--count", "3", "--credentials", str(file))[0] == 0
    first = json.loads(file.read_text())
    lost = {k: v for k, v in first.items() if k != "sim-002"}
    file.write_text(json.dumps({**lost, "elsewhere-9": "kept as it is"}))

    code, out, err = run("device", "ensure", "--count", "4", "--credentials", str(file))
    assert code == 0, err
    assert "registered sim-004; new passwords for sim-002" in out
    now = json.loads(file.read_text())
    assert now["sim-001"] == first["sim-001"] and now["sim-003"] == first["sim-003"]
    assert now["sim-002"] != first["sim-002"]
    assert now["elsewhere-9"] == "kept as it is"  # not ours: left alone
    opened = _opens(database_url, {k: v for k, v in now.items() if k.startswith("sim-")})
    assert opened == dict.fromkeys(opened, True)


def test_ensure_refuses_what_it_cannot_use(run: Run, tmp_path: Path) -> None:
    """No stations, or a credentials file that is not the JSON object: a line, exit 1."""
    file = tmp_path / "credentials.json"
    code, _, err = run("device", "ensure", "--count", "0", "--credentials", str(file))
    assert code == 1 and err.startswith("error: ") and "must be positive" in err
    assert not file.exists()
    file.write_text("[1, 2]")
    code, _, err = run("device", "ensure", "--count", "1", "--credentials", str(file))
    assert code == 1 and "must hold a JSON object" in err
    assert file.read_text() == "[1, 2]"


def test_signing_key_is_made_once_and_its_public_half_handed_out(run: Run, tmp_path: Path) -> None:
    """The key is created when absent and kept after; the public PEM is world-readable."""
    out = tmp_path / "trust" / "server-signing-key.pub.pem"
    code, _, err = run("signing-key", "--public-out", str(out))
    assert code == 0, err
    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    key = (tmp_path / "server" / "signing.pem").read_bytes()

    assert run("signing-key", "--public-out", str(out))[0] == 0
    assert out.read_bytes() == pem
    assert (tmp_path / "server" / "signing.pem").read_bytes() == key
