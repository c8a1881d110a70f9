"""What the server shows to whom: health without the broker account, docs and metrics behind
settings, and no listening beyond loopback on the published development key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from nicegui import core

from core import cli
from core.settings import Settings
from tests.harness import running_app
from tests.mqtt.broker import SERVER, RunningBroker
from tests.mqtt.server import server_settings
from tests.webui.api.helpers import assert_rejected
from webui import app

pytestmark = pytest.mark.backends("one")

HEALTH, DETAILS = "/api/v1/health", "/api/v1/health/details"
METRICS_TOKEN = "scraper-token-0123456789abcdef"


@asynccontextmanager
async def signed_in(settings: Settings, accounts: dict[str, str]) -> AsyncIterator[
    tuple[httpx.AsyncClient, dict[str, dict[str, str]]]
]:  # fmt: skip
    """The server on ``settings``, with an Authorization header per account."""
    async with running_app(settings) as client:
        headers = {}
        for name, password in accounts.items():
            answer = await client.post(
                "/api/v1/auth/login", json={"username": name, "password": password}
            )
            assert answer.status_code == 200, answer.text
            headers[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        yield client, headers


async def test_health_names_the_broker_account_only_to_operators(
    settings: Settings, accounts: dict[str, str], mosquitto: RunningBroker
) -> None:
    """Anyone learns the link is up; only who manages devices sees its endpoint and account."""
    linked = server_settings(settings, mosquitto)
    async with signed_in(linked, accounts) as (client, headers):
        supervisor = core.app.state.services.backbone.supervisor
        async with asyncio.timeout(10):
            await supervisor.wait_connected()
        public = await client.get(HEALTH)
        assert public.json()["broker"]["state"] == "connected"
        assert public.json()["broker"].keys() == {"state", "since"}
        assert SERVER[0] not in public.text and str(mosquitto.port) not in public.text

        details = await client.get(DETAILS, headers=headers["ada"])
        assert details.status_code == 200, details.text
        assert f"{SERVER[0]}@127.0.0.1:{mosquitto.port}" in details.json()["broker"]["detail"]
        assert_rejected(await client.get(DETAILS, headers=headers["vic"]), 403)
        assert_rejected(await client.get(DETAILS), 401)


async def test_docs_can_be_switched_off(settings: Settings) -> None:
    async with running_app(settings) as client:
        assert (await client.get("/openapi.json")).status_code == 200  # on by default
    async with running_app(settings.model_copy(update={"api_docs": False})) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get(HEALTH)).status_code == 200  # the API itself still answers


async def test_metrics_are_open_without_a_token(settings: Settings) -> None:
    async with running_app(settings) as client:
        assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Bearer {METRICS_TOKEN}x",
        f"Basic {METRICS_TOKEN}",
    ],
)
async def test_metrics_want_the_token_once_one_is_set(
    settings: Settings, authorization: str | None
) -> None:
    guarded = settings.model_copy(update={"metrics_token": METRICS_TOKEN})
    headers = {} if authorization is None else {"Authorization": authorization}
    async with running_app(guarded) as client:
        refused = await client.get("/metrics", headers=headers)
        assert_rejected(refused, 401)
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "pp_" not in refused.text
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        answer = await client.get("/metrics", headers=right)
        assert answer.status_code == 200 and "pp_broker_link_up" in answer.text


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "pp.example"])
def test_serve_refuses_the_development_key_beyond_loopback(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even in development: whoever reaches the server could sign its cookies and tokens."""

    def start(*_: object) -> None:
        pytest.fail("the server prepared to start with the development key on the network")

    monkeypatch.setattr(app, "prepare", start)
    for name in ("PP_SECRET_KEY", "PP_ENV", "PP_HTTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["serve", "--host", host]) == 2
    assert "PP_SECRET_KEY" in capsys.readouterr().err
    monkeypatch.setenv("PP_HTTP_HOST", host)  # the setting, as compose.yaml gives it
    assert cli.main(["serve"]) == 2
    assert "PP_SECRET_KEY" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"])
def test_the_development_key_may_listen_on_loopback(host: str) -> None:
    Settings().check_listen(host)  # no error


def test_an_own_key_may_listen_anywhere() -> None:
    Settings(secret_key="k" * 40).check_listen("0.0.0.0")  # no error
