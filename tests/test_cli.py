"""The ``precisionpulse`` command line: ``main()`` in-process, and once for real in a subprocess.

A subprocess costs a cold import of the whole stack (seconds on a slow machine), so only the
first-admin journey goes through ``python -m core.cli``; the rest call ``main()`` with the same
environment, standard input and working directory a subprocess would have.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from core import cli
from core.db import migrations
from core.db.engine import Database
from core.errors import AuthError
from core.services import auth, users
from core.settings import Settings

PG_ENV = "PP_TEST_DATABASE_URL"
UPGRADE_HINT = "precisionpulse db upgrade"
PASSWORD = "correct horse battery"
TIMEOUT = 120  # seconds; generous for a cold import of the UI stack on a slow machine


@dataclass(frozen=True)
class Result:
    """What a run of the command line left: its exit code and its output."""

    returncode: int
    stdout: str
    stderr: str


Run = Callable[..., Result | subprocess.CompletedProcess[str]]


def run(
    database_url: str, *args: str, stdin: str = "", cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """``precisionpulse ARGS`` in a subprocess, with only the given PP_ settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    environ.update(PP_DATABASE_URL=database_url, **env)
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture
def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Like ``run``, but calls ``core.cli.main`` in this process."""

    def run_in_process(
        database_url: str, *args: str, stdin: str = "", cwd: Path, **env: str
    ) -> Result:
        with monkeypatch.context() as patch:
            for name in [k for k in os.environ if k.startswith("PP_")]:
                patch.delenv(name)
            for name, value in {"PP_DATABASE_URL": database_url, **env}.items():
                patch.setenv(name, value)
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            patch.chdir(cwd)
            capsys.readouterr()  # drop whatever an earlier run printed
            code = cli.main(list(args))
            out, err = capsys.readouterr()
        return Result(code, out, err)

    return run_in_process


def assert_clean_failure(
    result: Result | subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr


def can_log_in(url: str, username: str, password: str) -> bool:
    async def attempt() -> bool:
        database = Database(url)
        try:
            async with database.session() as session:
                user = await users.find_by_username(session, username)
                assert user is not None
                assert await users.role_names(session, user.id) == ["Admin"]
                try:
                    await auth.login(
                        database, settings=Settings(), username=username, password=password
                    )
                except AuthError:
                    return False
                return True
        finally:
            await database.close()

    return asyncio.run(attempt())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of its own on the PP_TEST_DATABASE_URL server, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    admin = make_url(base).set(drivername="postgresql")
    admin_dsn = admin.render_as_string(hide_password=False)
    name = f"pp_clitest_{uuid.uuid4().hex[:12]}"

    async def sql(statement: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(sql(f'DROP DATABASE "{name}" WITH (FORCE)'))


def _first_admin(run: Run, url: str, cwd: Path) -> None:
    head = migrations.head_revision()
    before = run(url, "db", "current", cwd=cwd)
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == f"database at nothing; code needs {head}"

    upgraded = run(url, "db", "upgrade", cwd=cwd)
    assert upgraded.returncode == 0, upgraded.stderr
    assert head in upgraded.stdout

    current = run(url, "db", "current", cwd=cwd)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"database at {head}; code needs {head}"

    created = run(
        url,
        *("user", "create", "--username", "root1", "--role", "Admin", "--password-stdin"),
        stdin=PASSWORD + "\n",
        cwd=cwd,
    )
    assert created.returncode == 0, created.stderr
    assert "created user root1 (Admin)" in created.stdout
    assert PASSWORD not in created.stdout + created.stderr

    assert can_log_in(url, "root1", PASSWORD)
    assert not can_log_in(url, "root1", PASSWORD + "\n")


def test_first_admin_on_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    """The smoke test of the real entry point: ``python -m core.cli`` in a subprocess."""
    _first_admin(run, sqlite_url, tmp_path)


def test_first_admin_on_postgresql(pg_url: str, tmp_path: Path, run_main: Run) -> None:
    _first_admin(run_main, pg_url, tmp_path)


def test_db_downgrade_reports_the_empty_schema(
    sqlite_url: str, tmp_path: Path, run_main: Run
) -> None:
    assert run_main(sqlite_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    result = run_main(sqlite_url, "db", "downgrade", "base", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "database at nothing (base)"


def test_unknown_revision_is_a_message(sqlite_url: str, tmp_path: Path, run_main: Run) -> None:
    result = run_main(sqlite_url, "db", "upgrade", "nonesuch", cwd=tmp_path)
    assert_clean_failure(result, 1, "nonesuch")


def test_duplicate_username_exits_1(sqlite_url: str, tmp_path: Path, run_main: Run) -> None:
    assert run_main(sqlite_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    create = ("user", "create", "--username", "root1", "--role", "Admin", "--password-stdin")
    assert run_main(sqlite_url, *create, stdin=PASSWORD + "\n", cwd=tmp_path).returncode == 0

    again = run_main(sqlite_url, *create, stdin="another password\n", cwd=tmp_path)
    assert_clean_failure(again, 1, "root1", "already exists")
    assert can_log_in(sqlite_url, "root1", PASSWORD)


def test_unknown_role_exits_non_zero(sqlite_url: str, tmp_path: Path, run_main: Run) -> None:
    assert run_main(sqlite_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    result = run_main(
        sqlite_url,
        *("user", "create", "--username", "root1", "--role", "Overlord", "--password-stdin"),
        stdin=PASSWORD + "\n",
        cwd=tmp_path,
    )
    assert_clean_failure(result, 1, "unknown role", "Overlord")


def test_short_password_is_refused(sqlite_url: str, tmp_path: Path, run_main: Run) -> None:
    assert run_main(sqlite_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    result = run_main(
        sqlite_url,
        *("user", "create", "--username", "root1", "--role", "Admin", "--password-stdin"),
        stdin="",
        cwd=tmp_path,
    )
    assert_clean_failure(result, 1, "password")


def test_user_create_before_upgrade_says_to_upgrade(
    sqlite_url: str, tmp_path: Path, run_main: Run
) -> None:
    result = run_main(
        sqlite_url,
        *("user", "create", "--username", "root1", "--role", "Admin", "--password-stdin"),
        stdin=PASSWORD + "\n",
        cwd=tmp_path,
    )
    assert_clean_failure(result, 1, UPGRADE_HINT)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_refuses_an_unmigrated_database(
    sqlite_url: str, tmp_path: Path, run_main: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webui import app  # what `serve` would start, once the schema check let it through

    def start(_settings: Settings) -> None:
        pytest.fail("the server started on an unmigrated database")

    monkeypatch.setattr(app, "build", start)
    port = _free_port()
    result = run_main(sqlite_url, "serve", "--port", str(port), cwd=tmp_path)
    assert_clean_failure(result, 1, UPGRADE_HINT)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "something is listening"


def test_production_with_the_default_secret_exits_2(
    sqlite_url: str, tmp_path: Path, run_main: Run
) -> None:
    result = run_main(sqlite_url, "db", "current", cwd=tmp_path, PP_ENV="production")
    assert_clean_failure(result, 2, "PP_SECRET_KEY")


def test_bad_settings_are_not_echoed(sqlite_url: str, tmp_path: Path, run_main: Run) -> None:
    """The settings error names the problem, never the value (it may be a secret)."""
    secret = "too-short-but-private"
    result = run_main(
        sqlite_url, "db", "current", cwd=tmp_path, PP_ENV="production", PP_SECRET_KEY=secret
    )
    assert_clean_failure(result, 2, "PP_SECRET_KEY")
    assert secret not in result.stderr


def test_unreachable_database_is_a_message(tmp_path: Path, run_main: Run) -> None:
    port = _free_port()  # nothing listens there
    url = f"postgresql://someone:hunter2hunter2@127.0.0.1:{port}/nowhere"
    result = run_main(url, "db", "current", cwd=tmp_path)
    assert_clean_failure(result, 1, "cannot use the database", f"127.0.0.1:{port}/nowhere")
    assert "hunter2hunter2" not in result.stderr


def test_unsupported_database_is_a_message(tmp_path: Path, run_main: Run) -> None:
    result = run_main("mysql://someone@localhost/db", "db", "upgrade", cwd=tmp_path)
    assert_clean_failure(result, 2, "PP_DATABASE_URL", "mysql")
