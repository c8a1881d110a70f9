"""A bench run end to end, as the README gives it: ``python -m bench.<name>`` on the test DB."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PG_ENV = "PP_TEST_DATABASE_URL"
ROOT = Path(__file__).resolve().parents[2]
# A bench stands on PostgreSQL and a Mosquitto of its own: mark a test module with these.
NEEDS = [
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary"),
]


def run_bench(module: str, *args: str, timeout_s: float) -> tuple[dict[str, Any], str]:
    """Its final JSON line and all it printed; skipped without the test database.

    A run that exits non-zero fails the test with the end of what it wrote to stderr.
    """
    database = os.environ.get(PG_ENV)
    if not database:
        pytest.skip(f"{PG_ENV} is not set")
    run = subprocess.run(
        [sys.executable, "-m", module, *args, "--database-url", database],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    line: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return line, run.stdout
