"""Plain MQTT (no TLS) to another machine is refused unless someone says the network is trusted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.mqtt.endpoint import Endpoint
from core.settings import Settings

SECRET = "x" * 40


@pytest.mark.parametrize(
    ("url", "beyond"),
    [
        ("mqtt://127.0.0.1:1883", False),
        ("mqtt://127.9.9.9", False),
        ("mqtt://localhost", False),
        ("mqtt://[::1]:1883", False),
        ("mqtts://broker.example.com", False),
        ("mqtt://broker.example.com", True),
        ("mqtt://10.0.0.5", True),
        ("mqtt://0.0.0.0", True),
        ("mqtt://localhost.example.com", True),
    ],
)
def test_what_counts_as_plaintext_beyond_loopback(url: str, beyond: bool) -> None:
    assert Endpoint.from_url(url).plaintext_beyond_loopback is beyond


def test_production_refuses_plain_mqtt_to_another_machine() -> None:
    with pytest.raises(
        ValidationError, match=r"refusing plain MQTT to broker\.lan.*ALLOW_PLAINTEXT"
    ):
        Settings(env="production", secret_key=SECRET, mqtt_url="mqtt://broker.lan:1883")


def test_production_takes_tls_loopback_no_broker_or_an_explicit_allowance() -> None:
    for url in ("mqtts://broker.lan", "mqtt://127.0.0.1:1883", ""):
        Settings(env="production", secret_key=SECRET, mqtt_url=url)
    allowed = Settings(
        env="production", secret_key=SECRET, mqtt_url="mqtt://broker.lan", mqtt_allow_plaintext=True
    )
    assert allowed.mqtt_allow_plaintext


def test_the_allowance_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PP_ENV", "production")
    monkeypatch.setenv("PP_SECRET_KEY", SECRET)
    monkeypatch.setenv("PP_MQTT_URL", "mqtt://broker.lan")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("PP_MQTT_ALLOW_PLAINTEXT", "true")
    assert Settings().mqtt_url == "mqtt://broker.lan"


def test_development_keeps_plain_mqtt_anywhere() -> None:
    assert Settings(mqtt_url="mqtt://broker.lan").mqtt_url == "mqtt://broker.lan"
