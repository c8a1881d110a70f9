"""Security headers and cookie rules on every response: pages, API, static files, errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from nicegui.version import __version__

from core.settings import Settings
from tests.harness import running_app
from webui.http.headers import PAGE_POLICY

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

EVERY_KIND = [
    "/login",  # a page
    "/",  # a page that redirects to the sign-in
    "/api/v1/health",  # the API
    "/api/v1/devices",  # the API refusing an anonymous caller
    "/api/v1/no-such-thing",  # an API 404
    "/metrics",
    f"/_nicegui/{__version__}/static/nicegui.js",  # NiceGUI's static files
    "/no-such-page",
]


def _attributes(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


@pytest.mark.parametrize("path", EVERY_KIND)
async def test_every_response_carries_the_security_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    """CSP, nosniff, no framing, no referrer off-site; no HSTS over plain HTTP."""
    response = await client.get(path)
    assert response.headers["content-security-policy"] == PAGE_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers


def test_the_page_policy_allows_no_other_origin() -> None:
    """Scripts, styles, sockets and frames come from this server alone; no plugins, no framing."""
    directives = dict(part.split(" ", 1) for part in PAGE_POLICY.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"] == "'self'"  # no ws:/wss: wildcard to another host
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert not [v for v in directives.values() if "http" in v or "*" in v]


async def test_the_docs_and_their_assets_come_from_this_server(client: httpx.AsyncClient) -> None:
    """Swagger UI and ReDoc load from here alone (an air-gapped plant reaches no CDN)."""
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        policy = page.headers["content-security-policy"]
        assert "http" not in policy and "*" not in policy, policy
        assert "frame-ancestors 'none'" in policy
        assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
        assert assets, page.text
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
    assert (await client.get("/docs/assets/..%2Fcore.py")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/health"), ("GET", "/api/v1/devices"), ("POST", "/api/v1/auth/login"),
     ("GET", "/metrics")],
)  # fmt: skip
async def test_api_responses_set_no_cookie(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """NiceGUI's session cookie stays off the API: its callers carry bearer tokens."""
    body = {"username": "ada", "password": "admin-password-1"} if method == "POST" else None
    response = await client.request(method, path, json=body)
    assert "set-cookie" not in response.headers
    assert not client.cookies


async def test_a_page_sets_an_httponly_lax_session_cookie_not_secure_over_http(
    client: httpx.AsyncClient,
) -> None:
    """Over plain HTTP (development) a Secure cookie would never come back: it is left off."""
    page = await client.get("/login")
    (cookie,) = page.headers.get_list("set-cookie")
    assert cookie.startswith("session=")
    assert {"httponly", "samesite=lax"} <= _attributes(cookie)
    assert "secure" not in _attributes(cookie)


async def test_over_tls_a_page_gets_hsts_and_a_secure_cookie(
    settings: Settings, accounts: dict[str, str]
) -> None:
    """The request's own scheme decides: the same app over https:// pins and secures."""
    async with running_app(settings) as client:
        client.base_url = httpx.URL("https://test")
        page = await client.get("/login")
        api = await client.get("/api/v1/health")
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert api.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in _attributes(page.headers["set-cookie"])
    assert "set-cookie" not in api.headers


@pytest.fixture
async def behind_proxy(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with 127.0.0.1 (the test client's address) as its trusted TLS proxy."""
    proxied = settings.model_copy(update={"trusted_proxies": ["127.0.0.0/8"]})
    async with running_app(proxied) as client:
        yield client


FORWARDED_TLS = {"X-Forwarded-Proto": "https"}


async def test_a_trusted_proxy_reporting_tls_gets_hsts_and_secure_cookies(
    behind_proxy: httpx.AsyncClient,
) -> None:
    """A TLS-terminating proxy in PP_TRUSTED_PROXIES: its X-Forwarded-Proto is believed."""
    page = await behind_proxy.get("/login", headers=FORWARDED_TLS)
    plain = await behind_proxy.get("/login")
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in _attributes(page.headers["set-cookie"])
    assert "strict-transport-security" not in plain.headers
    assert "secure" not in _attributes(plain.headers["set-cookie"])


async def test_x_forwarded_proto_from_anyone_else_is_ignored(client: httpx.AsyncClient) -> None:
    """With no trusted proxy (the default), a local caller cannot claim to have come over TLS."""
    page = await client.get("/login", headers={**FORWARDED_TLS, "X-Forwarded-For": "10.9.9.9"})
    assert "strict-transport-security" not in page.headers
    assert "secure" not in _attributes(page.headers["set-cookie"])


@pytest.mark.parametrize(
    ("given", "kept"),
    [("", []), ("10.0.0.1", ["10.0.0.1"]), (" 10.0.0.0/8, ::1 ", ["10.0.0.0/8", "::1"])],
)
def test_trusted_proxies_are_read_comma_separated(
    monkeypatch: pytest.MonkeyPatch, given: str, kept: list[str]
) -> None:
    """PP_TRUSTED_PROXIES takes addresses and networks, as an operator writes them."""
    monkeypatch.setenv("PP_TRUSTED_PROXIES", given)
    assert Settings().trusted_proxies == kept


@pytest.mark.parametrize("given", ["proxy.example", "10.0.0.0/33", "*"])
def test_a_trusted_proxy_that_is_no_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """A name or a wildcard would trust more than was meant: refused, with the value named."""
    monkeypatch.setenv("PP_TRUSTED_PROXIES", given)
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings()


def test_tls_files_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate without its key (or the other way round) is a mistake, not plain HTTP."""
    monkeypatch.setenv("PP_SSL_CERTFILE", "/etc/pp/server.crt")
    with pytest.raises(ValueError, match="PP_SSL_CERTFILE and PP_SSL_KEYFILE go together"):
        Settings()
