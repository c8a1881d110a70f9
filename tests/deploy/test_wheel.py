"""The wheel carries the Alembic history: ``db upgrade`` works from an install with no checkout.

The image installs the project with ``pip install .`` (not editable), so the migrations must
travel inside the package; these tests build the wheel from a copy of the sources, look
inside it, install it into a directory of its own and migrate a fresh database from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

from tests.source_code import PACKAGES, ROOT

# What the wheel is built from: the packages, the migrations and the packaging files.
SOURCES = (*PACKAGES, "alembic", "pyproject.toml", "README.md")
INSTALLED = "core/db/alembic"  # where pyproject.toml's package-dir puts alembic/
BUILD_TIMEOUT = 120  # seconds; building takes ~5 s here, installing ~2 s


def _copy_sources(into: Path) -> Path:
    """A copy of what the wheel is built from, so the build leaves nothing in the checkout."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)
    return into


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline with the setuptools of this environment."""
    source = _copy_sources(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    (built,) = out.glob("precisionpulse-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into a directory of its own (no source tree beside it)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT,
    )
    return target


def test_every_package_on_disk_is_listed() -> None:
    """pyproject.toml lists its packages by hand: a new one left out would not ship."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = set(find_namespace_packages(str(ROOT), include=[f"{p}*" for p in PACKAGES]))
    mapped = {"core.db.alembic", "core.db.alembic.versions"}
    missing = on_disk - listed
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    assert listed - on_disk == mapped


def test_the_wheel_holds_every_migration(wheel: Path) -> None:
    """Each file of alembic/versions, env.py and the script template are in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    versions = sorted((ROOT / "alembic" / "versions").glob("*.py"))
    assert versions
    wanted = {f"{INSTALLED}/versions/{path.name}" for path in versions}
    wanted |= {f"{INSTALLED}/env.py", f"{INSTALLED}/script.py.mako"}
    assert wanted <= names, sorted(wanted - names)


def _run_installed(
    site: Path, cwd: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``precisionpulse ARGS`` from the installed copy, run in ``cwd`` (outside the checkout)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    environ.update(PYTHONPATH=str(site), **env)
    # It says which core it ran, so the test knows it was not the checkout's.
    program = (
        "import sys, core.cli; print(core.cli.__file__, file=sys.stderr); "
        "sys.exit(core.cli.main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )


def test_db_upgrade_runs_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    """A fresh SQLite database reaches the head revision with no alembic/ on disk around."""
    from core.db.migrations import head_revision

    database = tmp_path / "fresh.db"
    done = _run_installed(
        installed, tmp_path, "db", "upgrade", PP_DATABASE_URL=f"sqlite:///{database}"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(str(installed / "core")), done.stderr  # not the checkout's
    assert f"database at {head_revision()}" in done.stdout
