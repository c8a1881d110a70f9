"""A request body past PP_MAX_REQUEST_BYTES gets 413 before the server reads it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from core.settings import DEFAULT_MAX_REQUEST_BYTES, Settings
from tests.harness import running_app
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.backends("one")

LOGIN = "/api/v1/auth/login"
CHUNK = 64 * 1024  # what a client writes at a time
BIG = 5 * 1024 * 1024  # five times the default limit


class Body:
    """A JSON-ish body handed out chunk by chunk, counting what the server pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        yield b'{"username": "ada", "password": "'
        while self.pulled < self.size:
            self.pulled += CHUNK
            yield b"x" * CHUNK
        yield b'"}'


async def test_a_normal_login_passes(client: httpx.AsyncClient) -> None:
    response = await client.post(LOGIN, json={"username": "ada", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text


async def test_a_declared_big_body_is_refused_unread(client: httpx.AsyncClient) -> None:
    body = Body(BIG)
    headers = {"content-length": str(BIG + 40), "content-type": "application/json"}
    response = await client.post(LOGIN, content=body.chunks(), headers=headers)
    assert_rejected(response, 413)
    assert str(DEFAULT_MAX_REQUEST_BYTES) in response.json()["detail"]
    assert response.headers["connection"] == "close"
    assert body.pulled == 0, "the server read a body it had already refused"


async def test_a_chunked_big_body_is_refused_at_the_limit(client: httpx.AsyncClient) -> None:
    """Without Content-Length the server counts: it stops one chunk past the limit."""
    body = Body(BIG)
    response = await client.post(
        LOGIN, content=body.chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # it went chunked
    assert_rejected(response, 413)
    assert body.pulled <= DEFAULT_MAX_REQUEST_BYTES + CHUNK


async def test_a_body_that_lies_about_its_length_is_counted(client: httpx.AsyncClient) -> None:
    body = Body(BIG)
    headers = {"content-length": "100", "content-type": "application/json"}
    response = await client.post(LOGIN, content=body.chunks(), headers=headers)
    assert_rejected(response, 413)
    assert body.pulled <= DEFAULT_MAX_REQUEST_BYTES + CHUNK


async def test_a_refused_body_changes_nothing(settings: Settings, accounts: dict[str, str]) -> None:
    """The limit is a setting; a refused request never reaches the service."""
    small = settings.model_copy(update={"max_request_bytes": 2_000})
    async with running_app(small) as client:
        response = await client.post(LOGIN, json={"username": "ada", "password": accounts["ada"]})
        assert response.status_code == 200, response.text
        admin = {"Authorization": f"Bearer {response.json()['access_token']}"}
        too_big = {"username": "mallory", "password": "p" * 1024, "display_name": "d" * 1024}
        response = await client.post("/api/v1/users", json=too_big, headers=admin)
        assert_rejected(response, 413)
        assert "2000 bytes" in response.json()["detail"]
        names = [u["username"] for u in (await client.get("/api/v1/users", headers=admin)).json()]
        assert "mallory" not in names


async def test_pages_and_socket_io_still_answer(client: httpx.AsyncClient) -> None:
    """The limit stands in front of NiceGUI too, without getting in its way."""
    assert (await client.get("/login")).status_code == 200
    polling = await client.get(
        "/_nicegui_ws/socket.io/", params={"EIO": "4", "transport": "polling"}
    )
    assert polling.status_code == 200, polling.text


# A real server: only there does the socket fill when nobody reads, and can memory be seen.
FLOOD = 32 * 1024 * 1024  # bytes per request: well past the limit, and plain in the RSS
GROWTH_ALLOWED = 8 * 1024 * 1024  # buffers, a worker thread, allocator slack; not the body
START_S = 60  # NiceGUI's import and the migration on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    msg = "no VmHWM in /proc/<pid>/status"
    raise AssertionError(msg)


@contextmanager
def _server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``db upgrade`` then ``serve`` on a free loopback port, without a broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    env.pop("PYTEST_CURRENT_TEST", None)  # else NiceGUI would run in its test mode
    env |= {
        "PP_DATABASE_URL": f"sqlite:///{tmp_path / 'pp.db'}",
        "PP_MQTT_URL": "",
        "NICEGUI_STORAGE_PATH": str(tmp_path / ".nicegui"),
    }
    cli = [sys.executable, "-m", "core.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    port = _free_port()
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen(
            [*cli, "serve", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "server.log").read_text())
                time.sleep(0.1)
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=20)


def _flood(port: int, *, chunked: bool) -> bytes:
    """POST FLOOD bytes to the login as fast as the server takes them; what it answered."""
    head = f"POST {LOGIN} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {FLOOD}\r\n\r\n"
    piece = b"x" * CHUNK
    if chunked:
        piece = f"{CHUNK:x}\r\n".encode() + piece + b"\r\n"
    answer = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:

        def read() -> None:  # at once, before a reset for the unread body can drop it
            with contextlib.suppress(OSError):
                while data := sock.recv(65536):
                    answer.extend(data)

        reader = threading.Thread(target=read)
        reader.start()
        with contextlib.suppress(OSError):  # the server hangs up mid-body: the point
            sock.sendall(head.encode())
            for _ in range(FLOOD // CHUNK):
                sock.sendall(piece)
        reader.join(timeout=30)
    return bytes(answer)


def test_a_flood_leaves_the_server_memory_alone(tmp_path: Path) -> None:
    """32 MB bodies, declared and chunked, get 413 and the server's peak memory stays put."""
    with _server(tmp_path) as (process, port):
        normal = httpx.post(
            f"http://127.0.0.1:{port}{LOGIN}", json={"username": "nobody", "password": "x"}
        )
        assert normal.status_code == 401, normal.text  # a normal body is read and answered
        before = _peak_rss(process.pid)
        answers = [_flood(port, chunked=chunked) for chunked in (False, True)]
        growth = _peak_rss(process.pid) - before
    assert growth < GROWTH_ALLOWED, f"peak memory grew by {growth / 2**20:.1f} MiB"
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
