"""A real ``precisionpulse serve`` process, over HTTPS with certificates from ``broker certs``."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN, _cli, _free_port

START_S = 60  # NiceGUI's import and the first migration on a loaded 2-core machine


@dataclass(frozen=True)
class RunningServer:
    """Where the server answers, the CA that signed its certificate, and its NiceGUI storage."""

    url: str
    ca: Path
    storage: Path
    log: Path

    def client(self) -> httpx.Client:
        """An HTTPS client that trusts the server's CA and nothing else."""
        trusted = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.url, verify=trusted, timeout=30)


def environment(tmp_path: Path) -> dict[str, str]:
    """The server's own database and storage, no broker, and not NiceGUI's test mode."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PP_") and k != "PYTEST_CURRENT_TEST"
    }
    env["PP_DATABASE_URL"] = f"sqlite:///{tmp_path / 'pp.db'}"
    env["PP_MQTT_URL"] = ""  # the pages and API only: no broker to wait for
    env["NICEGUI_STORAGE_PATH"] = str(tmp_path / ".nicegui")
    # The CLI and serve must share the server's keys: the audit key above all, or the CLI's
    # entries read as forged to the server.
    env["PP_SIGNING_KEY_FILE"] = str(tmp_path / "data" / "server-signing-key.pem")
    return env


@contextmanager
def https_server(tmp_path: Path) -> Iterator[RunningServer]:
    """`broker certs`, `db upgrade`, an Admin, then `serve --ssl-certfile … --ssl-keyfile …`."""
    with _serve(tmp_path, tls=True) as server:
        yield server


@contextmanager
def http_server(tmp_path: Path, **settings: str) -> Iterator[RunningServer]:
    """The same server in plain HTTP, as in development or behind a proxy.

    ``settings`` are given in its environment (``oidc_issuer="…"`` as PP_OIDC_ISSUER).
    """
    with _serve(tmp_path, tls=False, settings=settings) as server:
        yield server


@contextmanager
def _serve(
    tmp_path: Path, *, tls: bool, settings: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    env = environment(tmp_path)
    env |= {f"PP_{name.upper()}": value for name, value in (settings or {}).items()}
    certs = tmp_path / "certs"
    _cli(env, "broker", "certs", "--out", str(certs), "--host", "127.0.0.1", cwd=tmp_path)
    _cli(env, "db", "upgrade", cwd=tmp_path)
    _cli(env, "user", "create", "--username", ADMIN[0], "--role", "Admin",
         "--password-stdin", stdin=ADMIN[1] + "\n", cwd=tmp_path)  # fmt: skip
    port = _free_port()
    files = [
        "--ssl-certfile",
        str(certs / "server.crt"),
        "--ssl-keyfile",
        str(certs / "server.key"),
    ]
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "core.cli",
                "serve",
                "--port",
                str(port),
                *(files if tls else []),
            ],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    scheme = "https" if tls else "http"
    server = RunningServer(
        f"{scheme}://127.0.0.1:{port}", certs / "ca.crt", tmp_path / ".nicegui", log
    )
    try:
        _wait_until_up(server, process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_until_up(server: RunningServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_S
    with server.client() as client:
        while time.monotonic() < deadline:
            try:
                client.get("/api/v1/health", timeout=1)
                return
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail(f"server exited: {server.log.read_text()}")
                time.sleep(0.1)
    pytest.fail(f"no answer in {START_S} s: {server.log.read_text()}")
