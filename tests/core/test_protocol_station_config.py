"""Station configuration on the wire: settings checks, the signed desired message, reports."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from core.protocol.drops import Drop, DropReason
from core.protocol.signing import generate_signing_key
from core.protocol.station_config import (
    VALID_MS,
    ConfigError,
    ConfigReport,
    DesiredConfig,
    Refused,
    check_settings,
    read_desired,
)

KEY = generate_signing_key()
TRUSTED = [KEY.public_key()]
NOW = 1_764_170_000_000


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"interval_s": 0.05},
        {"interval_s": 3600},
        {"heartbeat_s": 1, "units": {"temp": "°C", "door.open": ""}},
    ],
)
def test_runnable_settings_pass_unchanged(settings: dict[str, Any]) -> None:
    assert check_settings(settings) == settings


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"interval": 1}, "unknown setting(s): interval"),
        ({"interval_s": 0.01}, "interval_s must be 0.05-3600 s"),
        ({"interval_s": True}, "must be a number"),
        ({"interval_s": "1"}, "must be a number"),
        ({"interval_s": float("nan")}, "must be a number"),
        ({"heartbeat_s": 1.5}, "heartbeat_s must be whole seconds"),
        ({"heartbeat_s": 0}, "heartbeat_s must be whole seconds"),
        ({"units": ["°C"]}, "units must map"),
        ({"units": {"Temp": "°C"}}, "bad channel name"),
        ({"units": {"temp": "x" * 33}}, "at most 32 characters"),
    ],
)
def test_settings_a_station_cannot_run_are_refused_with_the_reason(
    settings: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_settings(settings)


def test_a_signed_configuration_reads_back_for_its_device() -> None:
    desired = DesiredConfig("press-07", 3, {"interval_s": 2.5})
    payload = desired.signed(KEY, now_ms=NOW)
    assert orjson.loads(payload)["type"] == "config.desired"
    assert read_desired(payload, "press-07", TRUSTED, now_ms=NOW) == desired


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda m: {**m, "jws": m["jws"][:-4] + "AAAA"}, "signature"),
        (lambda m: {**m, "jws": 7}, "no signed configuration"),
        (lambda m: {**m, "device_id": "lathe-1"}, "device_mismatch"),
        (lambda m: {**m, "v": 2}, "unsupported_version"),
    ],
)
def test_tampered_or_misaddressed_configurations_are_refused(mangle: Any, reason: str) -> None:
    message = orjson.loads(DesiredConfig("press-07", 1, {}).signed(KEY, now_ms=NOW))
    refused = read_desired(orjson.dumps(mangle(message)), "press-07", TRUSTED, now_ms=NOW)
    assert isinstance(refused, Refused) and reason in refused.detail


def test_a_token_signed_for_another_device_is_refused_even_rewrapped() -> None:
    other = orjson.loads(DesiredConfig("lathe-1", 4, {}).signed(KEY, now_ms=NOW))
    rewrapped = orjson.dumps({**other, "device_id": "press-07"})
    refused = read_desired(rewrapped, "press-07", TRUSTED, now_ms=NOW)
    assert refused == Refused("signed for 'lathe-1', not 'press-07'", 4)


def test_unknown_keys_no_keys_and_expired_configurations_are_refused() -> None:
    payload = DesiredConfig("press-07", 1, {}).signed(KEY, now_ms=NOW)
    stranger = [generate_signing_key().public_key()]
    assert "unknown kid" in _detail(read_desired(payload, "press-07", stranger, now_ms=NOW))
    assert "no trusted server key" in _detail(read_desired(payload, "press-07", [], now_ms=NOW))
    late = NOW + VALID_MS + 3_600_000
    assert "expired" in _detail(read_desired(payload, "press-07", TRUSTED, now_ms=late))


def test_a_signed_but_unrunnable_configuration_is_refused_with_its_version() -> None:
    payload = DesiredConfig("press-07", 9, {"interval_s": 0}).signed(KEY, now_ms=NOW)
    refused = read_desired(payload, "press-07", TRUSTED, now_ms=NOW)
    assert isinstance(refused, Refused) and refused.version == 9
    assert "interval_s must be" in refused.detail


def _detail(result: DesiredConfig | Refused) -> str:
    assert isinstance(result, Refused)
    return result.detail


def test_a_report_round_trips_and_junk_is_dropped() -> None:
    report = ConfigReport("press-07", 2, {"interval_s": 1.0}, "rejected", 3, "why")
    assert ConfigReport.parse(report.encode(), "press-07") == report
    junk = orjson.dumps({"v": 1, "type": "config.reported", "device_id": "press-07", "version": -1})
    dropped = ConfigReport.parse(junk, "press-07")
    assert isinstance(dropped, Drop) and dropped.reason is DropReason.MALFORMED
    other = ConfigReport.parse(report.encode(), "lathe-1")
    assert isinstance(other, Drop) and other.reason is DropReason.DEVICE_MISMATCH
