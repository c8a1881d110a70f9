"""The committed Mosquitto files are the renderings, and rendering refuses bad values."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from broker import config

BROKER = Path(config.__file__).parent


def test_committed_conf_is_the_production_rendering() -> None:
    """Edit broker/config.py and run `precisionpulse broker conf --out broker` instead."""
    assert (BROKER / "mosquitto.conf").read_text() == config.render_deployment_conf()


def test_committed_acl_is_the_rendering() -> None:
    assert (BROKER / "acl").read_text() == config.render_acl()


def test_production_conf_has_the_measured_settings() -> None:
    lines = config.render_deployment_conf().splitlines()
    for expected in (
        "allow_anonymous false",
        "per_listener_settings false",
        "listener 8883 0.0.0.0",
        "tls_version tlsv1.2",
        "persistence_location /mosquitto/data/",
        f"max_queued_messages {config.MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {config.MAX_INFLIGHT_MESSAGES}",
        "set_tcp_nodelay true",
    ):
        assert expected in lines


def test_without_certs_there_is_no_tls() -> None:
    conf = config.render_deployment_conf(certs_dir=None, port=1883)
    assert "listener 1883 0.0.0.0" in conf.splitlines()
    assert "cafile" not in conf and "tls_version" not in conf


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0},
        {"port": 65536},
        {"password_file": PurePosixPath("/x\nallow_anonymous true")},
        {"bind_address": "127.0.0.1 "},
    ],
)
def test_bad_values_are_refused(changes: dict[str, object]) -> None:
    kwargs: dict[str, object] = {
        "port": 1883,
        "bind_address": "127.0.0.1",
        "password_file": PurePosixPath("/p"),
        "acl_file": PurePosixPath("/a"),
        "persistence_location": PurePosixPath("/d"),
    } | changes
    with pytest.raises(ValueError):
        config.render_mosquitto_conf(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("username", ["", "two words", "a/b", "#", "x" * 65])
def test_acl_refuses_a_server_name_that_breaks_the_file(username: str) -> None:
    with pytest.raises(ValueError, match="server's username"):
        config.render_acl(username)


def test_acl_names_the_configured_server() -> None:
    assert "user ingest-1\ntopic readwrite #\n" in config.render_acl("ingest-1")


def test_acl_gives_each_server_replica_its_own_account() -> None:
    acl = config.render_acl("server-1", "server-2")
    assert "user server-1\ntopic readwrite #\n" in acl
    assert "user server-2\ntopic readwrite #\n" in acl


def test_acl_lets_a_device_write_only_what_travels_to_the_server() -> None:
    lines = config.render_acl().splitlines()
    device = [line for line in lines if line.startswith("pattern ")]
    assert device == [
        "pattern write pp/v1/dev/%u/telemetry",
        "pattern write pp/v1/dev/%u/telemetry/replay",
        "pattern write pp/v1/dev/%u/status",
        "pattern write pp/v1/dev/%u/heartbeat",
        "pattern write pp/v1/dev/%u/cmd/result",
        "pattern write pp/v1/dev/%u/config/reported",
        "pattern write pp/v1/dev/%u/sync/up",
        "pattern read pp/v1/dev/%u/telemetry/ack",
        "pattern read pp/v1/dev/%u/cmd",
        "pattern read pp/v1/dev/%u/config/desired",
        "pattern read pp/v1/dev/%u/sync/down",
        "pattern read pp/v1/server/status",
    ]


def test_every_listener_binds_client_ids_to_usernames() -> None:
    for conf in (config.render_deployment_conf(), config.render_deployment_conf(certs_dir=None)):
        lines = conf.splitlines()
        assert lines.index("use_username_as_clientid true") > lines.index("listener 8883 0.0.0.0")
