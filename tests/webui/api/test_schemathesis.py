"""Schemathesis over /openapi.json as an admin: no input gets a 5xx, and every answer, 4xx
included, has the shape the document gives it.

Per operation: schemathesis' coverage cases (boundaries and just past them, wrong types,
missing fields; about 750 in all), then 30 generated valid and 30 invalid examples, and for
operations on one object 30 more valid ones aimed at an object that exists, so the services
behind the 404 are reached too. About 2,700 requests, ~1.5 minutes on a 2-core box.

Hypothesis is synchronous and the app lives on the test's event loop, so the examples are
generated in a worker thread that hands each request back to the loop and waits for it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from nicegui import core
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from core.db.engine import Database
from core.db.models import QuarantinedSample
from core.services import commands, device_configs, devices, roles, users
from core.services.actor import Actor
from tests.webui.conftest import LoginAs

pytestmark = pytest.mark.backends("one")

EXAMPLES = 30  # per operation and generation mode (50 took the suite's longest 2.5 minutes)
# Requests that would end the run's meaning rather than test anything: the admin's token must
# stay valid for every later request. Logout is covered by tests/webui/api/test_auth.py.
EXCLUDED = {("POST", "/api/v1/auth/logout"): "would end the session of the run's own token"}
REQUEST_TIMEOUT_S = 30.0  # one request to the in-process server, generously
CHECKS = [not_a_server_error, response_schema_conformance]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
SETUP = Actor(name="test", permissions=frozenset({"roles:manage", "devices:write", "config:write"}))
SENDER = Actor(name="test", permissions=frozenset({"commands:send"}))

Send = Callable[[Any], httpx.Response]


async def _targets(database: Database) -> dict[str, str]:
    """Objects that exist, for the path parameters of the aimed examples.

    Never the admin's own id: deleting or disabling it would sign the run out.
    """
    async with database.session() as session:
        victim = await users.bootstrap_user(
            session, username="victim", password="victim-password-1", roles=["Viewer"]
        )
        role = await roles.create_role(
            session, actor=SETUP, name="Fuzzed", description="", permissions=[]
        )
        device = await devices.create_device(session, actor=SETUP, device_id="fuzz-01")
        await device_configs.update_desired(  # a configuration version 1 to read
            session, actor=SETUP, device_id="fuzz-01", changes={"interval_s": 1}
        )
        command = await commands.create(
            session, actor=SENDER, device_id="fuzz-01", kind="Ping", args={}
        )
        # Ended, so a long poll of it (GET ?wait_s= up to 30) answers at once, not in 30 s.
        await commands.cancel(session, actor=SENDER, command_id=command.id)
        at = datetime.now(UTC)  # a quarantined sample, as ingest leaves one
        session.add(
            QuarantinedSample(
                device_id="fuzz-01", stream="s1", seq=1, ts=at, reason="bad_value",
                detail="no values", raw="{}", received_at=at,
            )
        )  # fmt: skip
    ids = {"user_id": str(victim.id), "role_id": str(role.id), "device_id": device.device.id}
    ids |= {"stream": "s1", "seq": "1"}
    return ids | {"version": "1", "command_id": str(command.id), "batch_id": str(uuid.uuid4())}


def _operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in EXCLUDED:
            yield operation


def _request(case: Any, admin: dict[str, str]) -> dict[str, Any]:
    """httpx arguments for a case, JSON encoded as ASCII so lone surrogates survive the trip."""
    sent = case.as_transport_kwargs(base_url="http://test", headers=admin)
    request: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": sent.get("headers") or {},
        "params": sent.get("params") or None,
    }
    if "json" in sent:
        request["content"] = json.dumps(sent["json"]).encode()
    elif sent.get("data") is not None:
        data = sent["data"]
        request["content"] = data.encode() if isinstance(data, str) else data
    return request


def _name(operation: Any, how: str) -> str:
    return f"{operation.method.upper()} {operation.path} ({how})"


def _cover(schema: Any, operation: Any, send: Send) -> list[str]:
    """Schemathesis' coverage cases of one operation; what failed."""
    config = schema.config.generation_for(operation=operation)
    found = []
    for case in schema.iter_coverage_cases(
        operation, generation_modes=MODES, generation_config=config
    ):
        try:
            case.validate_response(send(case), checks=CHECKS)
        except (Exception, BaseExceptionGroup) as error:  # collected: one run shows them all
            found.append(f"{_name(operation, 'coverage')}: {error}")
    return found


def _fuzz(
    operation: Any, mode: GenerationMode, path_parameters: dict[str, str] | None, send: Send
) -> list[str]:
    """EXAMPLES generated cases of one operation; what failed (hypothesis' smallest case)."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis directory in the work tree
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        case.validate_response(send(case), checks=CHECKS)

    try:
        check()
    except Unsatisfiable:  # nothing to make invalid: no parameters and no body
        if mode is not GenerationMode.NEGATIVE:
            raise
    except (Exception, BaseExceptionGroup) as error:
        aimed = ", at existing objects" if path_parameters else ""
        return [f"{_name(operation, mode.value + aimed)}: {error}"]
    return []


async def test_no_input_makes_the_api_fail(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    targets = await _targets(database)
    schema = schemathesis.openapi.from_dict((await client.get("/openapi.json")).json())
    loop = asyncio.get_running_loop()
    transport = httpx.ASGITransport(core.app, raise_app_exceptions=False)  # a 500 is an answer
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as fuzzer:

        def send(case: Any) -> httpx.Response:  # from the worker thread
            request = fuzzer.request(**_request(case, admin))
            return asyncio.run_coroutine_threadsafe(request, loop).result(REQUEST_TIMEOUT_S)

        found: list[str] = []
        for operation in _operations(schema):
            found += await asyncio.to_thread(_cover, schema, operation, send)
            for mode in MODES:
                found += await asyncio.to_thread(_fuzz, operation, mode, None, send)
            names = [parameter.name for parameter in operation.path_parameters]
            if names:  # invalid input is refused before the lookup: the random ids tried it
                aimed = {name: targets[name] for name in names}
                found += await asyncio.to_thread(
                    _fuzz, operation, GenerationMode.POSITIVE, aimed, send
                )
    assert not found, "\n\n".join(found)
    # Nothing above signed the admin out: the run stayed meaningful to the end.
    assert (await client.get("/api/v1/auth/me", headers=admin)).status_code == 200
