"""``precisionpulse audit verify``, and the CLI's own audit entries carry the server's key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.db.engine import Database
from core.protocol.signing import load_or_create
from core.services import audit
from tests import test_cli
from tests.test_cli import PASSWORD, Run

run_main = test_cli.run_main  # the fixture: core.cli.main in this process

AUDITED_CREATE = ("user", "create", "--username", "root1", "--role", "Admin", "--password-stdin")


def test_cli_users_are_audited_with_the_key_and_verify_says_so(
    tmp_path: Path, run_main: Run
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    assert run_main(url, "db", "upgrade", cwd=tmp_path).returncode == 0
    created = run_main(url, *AUDITED_CREATE, stdin=PASSWORD + "\n", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key_file = tmp_path / "data" / "audit-key"  # beside the (default) signing key
    assert key_file.stat().st_mode & 0o777 == 0o600
    load_or_create(tmp_path / "data" / "server-signing-key.pem")  # as the server would

    verified = run_main(url, "audit", "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("audit chain checkpoint_missing: intact over")

    async def forge() -> int:  # an entry by someone without the key
        database = Database(url)
        try:
            async with database.session() as session:
                return (await audit.record(session, actor="mallory", action="x")).id
        finally:
            await database.close()

    forged = asyncio.run(forge())
    refused = run_main(url, "audit", "verify", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stdout.startswith(f"audit chain tampered: entry #{forged} is unkeyed")


def test_a_user_created_away_from_the_servers_key_is_refused(tmp_path: Path, run_main: Run) -> None:
    """Run elsewhere, the CLI would make a key of its own: it refuses and writes nothing."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    server_dir, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    server_dir.mkdir()
    elsewhere.mkdir()
    assert run_main(url, "db", "upgrade", cwd=server_dir).returncode == 0
    first = run_main(url, *AUDITED_CREATE, stdin=PASSWORD + "\n", cwd=server_dir)
    assert first.returncode == 0, first.stderr

    second = ("user", "create", "--username", "root2", "--role", "Admin", "--password-stdin")
    refused = run_main(url, *second, stdin=PASSWORD + "\n", cwd=elsewhere)
    assert refused.returncode == 1
    assert "did not sign this database's audit log" in refused.stderr

    again = run_main(url, *second, stdin=PASSWORD + "\n", cwd=server_dir)
    assert again.returncode == 0, again.stderr  # where the server runs, it works
