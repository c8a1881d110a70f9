"""compose.yaml: valid offline with .env.example, refused without a secret, shaped by the rules.

The rules: every long-running service has a healthcheck and a restart policy, the one-shot
init job is waited for to complete, every dependency names its condition, the broker has a
TLS listener and no plaintext one, and no secret is written in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from broker import config as broker_config
from tests.deploy.compose_file import (
    COMPOSE,
    ENV_EXAMPLE,
    INTERPOLATED,
    REQUIRED,
    compose_config,
    example_env,
    parsed,
)

# Environment variables whose value is a secret: they may only come from ${VAR:?…}.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
ONE_SHOT = "init"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as docker-compose resolves it with the variables of .env.example."""
    done = compose_config(example_env(), tmp_path_factory.mktemp("compose"))
    assert done.returncode == 0, done.stderr
    return parsed(done.stdout)


def _required() -> list[str]:
    return sorted(set(REQUIRED.findall(COMPOSE.read_text())))


def test_every_variable_is_in_env_example_with_a_comment() -> None:
    """An operator copying .env.example meets every variable the file reads, explained."""
    used = set(INTERPOLATED.findall(COMPOSE.read_text()))
    example = example_env()
    assert used == set(example), f"in compose only: {used - set(example)}; " + (
        f"in .env.example only: {set(example) - used}"
    )
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name in example:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name}="))
        above = lines[:at]
        while above and above[-1].startswith(tuple(f"{n}=" for n in example)):
            above.pop()  # variables listed together share the comment above them
        assert above and above[-1].startswith("#"), f"{name} has no comment above it"


def test_the_secrets_are_required() -> None:
    """The secrets are the variables compose refuses to run without."""
    assert _required() == [
        "POSTGRES_PASSWORD",
        "PP_ADMIN_PASSWORD",
        "PP_METRICS_TOKEN",
        "PP_MQTT_SERVER_PASSWORD",
        "PP_SECRET_KEY",
    ]


@pytest.mark.parametrize("missing", _required())
def test_a_missing_secret_stops_compose(missing: str, tmp_path: Path) -> None:
    """Without any one of them (unset or empty), `config` fails and names it."""
    env = {name: value for name, value in example_env().items() if name != missing}
    done = compose_config(env, tmp_path)
    assert done.returncode != 0
    assert missing in done.stderr
    done = compose_config({**env, missing: ""}, tmp_path)
    assert done.returncode != 0


def test_no_secret_is_written_in_the_file() -> None:
    """Every secret-looking setting of every service is a required variable, not a value."""
    raw = parsed(COMPOSE.read_text())  # before interpolation: what the file itself says
    found = []
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            secret = SECRET_NAME.search(key) and not key.endswith("_FILE")
            if secret and not re.fullmatch(REQUIRED.pattern, str(value)):
                found.append(f"{name}: {key}={value!r}")
        url = (service.get("environment") or {}).get("PP_DATABASE_URL", "")
        if url:
            assert "${POSTGRES_PASSWORD:?" in url, f"{name}: the database URL's password"
    assert not found, found


def test_secrets_reach_the_services_from_the_environment(config: dict[str, Any]) -> None:
    """The values of .env.example are what the services get (the file adds none of its own)."""
    example = example_env()
    server = config["services"]["server"]["environment"]
    assert server["PP_SECRET_KEY"] == example["PP_SECRET_KEY"]
    assert server["PP_MQTT_PASSWORD"] == example["PP_MQTT_SERVER_PASSWORD"]
    assert f":{example['POSTGRES_PASSWORD']}@db:" in server["PP_DATABASE_URL"]


def test_every_service_has_a_healthcheck_and_a_restart_policy(config: dict[str, Any]) -> None:
    """Long-running services are checked and restarted; the init job is neither."""
    services = config["services"]
    assert set(services) == {"db", "init", "mosquitto", "server", "stations"}
    for name, service in services.items():
        check = service.get("healthcheck", {})
        if name == ONE_SHOT:
            # Off: the image's own check asks for a server. (Compose v1 writes it as NONE.)
            assert check.get("disable") is True or check.get("test") == ["NONE"]
            assert service["restart"] == "no"
            continue
        assert check.get("test") and check["test"] != ["NONE"], f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_our_image_is_built_wherever_it_runs(config: dict[str, Any]) -> None:
    """Every service on the project's image builds it: `up` never looks for it in a registry."""
    ours = {n: s for n, s in config["services"].items() if s["image"] == "precisionpulse"}
    assert set(ours) == {"init", "server", "stations"}
    for name, service in ours.items():
        assert Path(service["build"]["context"]) == COMPOSE.parent, name


def test_dependencies_name_their_condition(config: dict[str, Any]) -> None:
    """Every depends_on says what to wait for; the init job is waited for to complete."""
    for name, service in config["services"].items():
        for needed, how in service.get("depends_on", {}).items():
            condition = how.get("condition")
            if needed == ONE_SHOT:
                assert condition == "service_completed_successfully", name
            else:
                assert condition == "service_healthy", f"{name} → {needed}: {condition}"
    for name in ("mosquitto", "server", "stations"):
        assert ONE_SHOT in config["services"][name]["depends_on"], name


def test_mosquitto_listens_with_tls_only(config: dict[str, Any]) -> None:
    """The rendered broker config has one listener, with TLS; only it is published."""
    init = config["services"][ONE_SHOT]["entrypoint"][-1]
    assert "precisionpulse broker conf --out /app/broker" in init
    assert "--no-tls" not in init
    conf = broker_config.render_deployment_conf()  # what `broker conf` writes by default
    listeners = [line for line in conf.splitlines() if line.startswith("listener ")]
    assert listeners == [f"listener {broker_config.PRODUCTION_PORT} 0.0.0.0"]
    assert "certfile /mosquitto/config/certs/server.crt" in conf
    mosquitto = config["services"]["mosquitto"]
    assert '-c "$$conf/mosquitto.conf"' in mosquitto["entrypoint"][-1]
    published = {int(str(port["target"] if isinstance(port, dict) else port).split(":")[-1])
                 for port in mosquitto.get("ports", [])}  # fmt: skip
    assert published == {broker_config.PRODUCTION_PORT}
    assert "expose" not in mosquitto


def test_services_reach_the_broker_over_tls(config: dict[str, Any]) -> None:
    """The server and the stations speak mqtts:// and trust the CA the init job made."""
    for name in ("server", "stations"):
        env = config["services"][name]["environment"]
        assert env["PP_MQTT_URL"].startswith("mqtts://mosquitto:"), name
        assert env["PP_MQTT_CA_FILE"] == "/app/trust/ca.crt", name
        assert "PP_MQTT_ALLOW_PLAINTEXT" not in env, name
