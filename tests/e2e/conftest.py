"""A real server process on a free port and a real headless Chromium driving it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ADMIN = ("ada", "ada-password-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`db upgrade`, an Admin made from the shell, then `serve`: the way a new user starts."""
    port = _free_port()
    # Without pytest's marker variable: NiceGUI would otherwise run in its test mode.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PP_DATABASE_URL"] = f"sqlite:///{tmp_path / 'pp.db'}"
    # The server's keys (signing, audit) in this test's directory, shared by the CLI and
    # serve as an install shares them: never the checkout's data/.
    env["PP_SIGNING_KEY_FILE"] = str(tmp_path / "data" / "server-signing-key.pem")
    _cli(env, "db", "upgrade")
    _cli(
        env,
        "user",
        "create",
        "--username",
        ADMIN[0],
        "--role",
        "Admin",
        "--password-stdin",
        stdin=ADMIN[1] + "\n",
    )
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # the server imports NiceGUI first: a few seconds
            try:
                urllib.request.urlopen(f"{url}/api/v1/health", timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"server exited: {(tmp_path / 'server.log').read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium through chromedriver (Debian's packages)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("PP_REQUIRE_BROWSER"):
            pytest.fail("needs Chromium here: apt-get install chromium chromium-driver")
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver  # imported once a browser is known to exist
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
