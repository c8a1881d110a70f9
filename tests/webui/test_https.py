"""`serve --ssl-certfile --ssl-keyfile`: UI and API over TLS, HSTS, Secure cookies, no HTTP."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.conftest import ADMIN
from tests.e2e.servers import RunningServer, environment, http_server, https_server
from webui.http import tls


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One HTTPS server for the module: starting one takes seconds."""
    with https_server(tmp_path_factory.mktemp("https")) as running:
        yield running


def test_the_api_answers_over_tls_with_hsts_and_sets_no_cookie(server: RunningServer) -> None:
    """Verified against the CA from `broker certs`; HSTS pins the browser to HTTPS."""
    with server.client() as client:
        health = client.get("/api/v1/health")
        login = client.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert health.status_code == 200, health.text
    assert health.headers["strict-transport-security"] == "max-age=31536000"
    assert login.status_code == 200, login.text
    assert "set-cookie" not in health.headers
    assert "set-cookie" not in login.headers


def test_a_page_over_tls_sets_a_secure_httponly_session_cookie(server: RunningServer) -> None:
    """The cookie that carries the browser's sign-in never travels in the clear."""
    with server.client() as client:
        page = client.get("/login")
    assert page.status_code == 200
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    (cookie,) = page.headers.get_list("set-cookie")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith("session=")
    assert {"secure", "httponly", "samesite=lax"} <= attributes


def test_plain_http_to_the_tls_port_gets_nothing(server: RunningServer) -> None:
    """No page or API answer leaks over an unencrypted connection."""
    plain = server.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/api/v1/health", timeout=5)


def test_a_client_that_does_not_trust_the_ca_is_refused(server: RunningServer) -> None:
    """The certificate is checked, not merely present: the system CAs do not vouch for it."""
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{server.url}/api/v1/health", timeout=5)


def test_bad_tls_files_are_refused_before_the_server_starts(
    server: RunningServer, tmp_path: Path
) -> None:
    """A key of another certificate: `serve` exits 2 and says why, listening on nothing."""
    certs = server.ca.parent
    refused = subprocess.run(
        [sys.executable, "-m", "core.cli", "serve", "--port", "1",
         "--ssl-certfile", str(certs / "server.crt"), "--ssl-keyfile", str(certs / "ca.key")],
        env=environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "error: " in refused.stderr
    assert "are not a PEM certificate and its key" in refused.stderr


def test_each_bad_pair_is_named(server: RunningServer) -> None:
    """A lone file, a missing one, a mismatch, an encrypted key: each gets its own reason."""
    certs = server.ca.parent
    cert, key = certs / "server.crt", certs / "server.key"
    encrypted = certs / "encrypted.key"
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    cases = {
        (cert, None): "--ssl-certfile and --ssl-keyfile",
        (cert, certs / "absent.key"): f"cannot read {certs / 'absent.key'}",
        (cert, certs / "ca.key"): "are not a PEM certificate and its key",
        (cert, encrypted): "the key file is encrypted",
    }
    for (certfile, keyfile), reason in cases.items():
        with pytest.raises(tls.TlsFilesError, match=re.escape(reason)):
            tls.uvicorn_options(certfile, keyfile)
    assert tls.uvicorn_options(None, None) == {}
    assert tls.uvicorn_options(cert, key) == {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def test_plain_http_from_a_local_process_cannot_claim_tls(tmp_path: Path) -> None:
    """uvicorn believes X-Forwarded-Proto from 127.0.0.1 by default; the server believes
    only PP_TRUSTED_PROXIES (none here), so no HSTS and no Secure cookie over plain HTTP."""
    claim = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with http_server(tmp_path) as server, server.client() as client:
        page = client.get("/login", headers=claim)
    assert "strict-transport-security" not in page.headers
    assert "secure" not in page.headers["set-cookie"].lower()
