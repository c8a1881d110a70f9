"""A station's configuration: what it may hold, the signed desired message, the report.

The server publishes ``config/desired`` retained: an envelope carrying a compact JWS whose
payload names the device, a ``version`` that only grows, the configuration, and a validity
window. The station verifies it against the server keys it trusts, checks the settings,
applies them, keeps them in its outbox file (so it starts offline with them), and answers
on ``config/reported`` (retained) with the version it runs and the outcome of the last
desired version it saw. Both sides check settings with ``check_settings``: the server
refuses a bad change with a reason before anything is signed; the station refuses it again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from core.protocol.drops import Drop, DropReason
from core.protocol.messages import encode, json_count, read_envelope, unwrap_signed, wrap_signed
from core.protocol.signing import (
    SignatureError,
    SigningKey,
    VerifyingKey,
    verify_envelope,
)

VERSION = 1
DESIRED_TYPE = "config.desired"
REPORTED_TYPE = "config.reported"
# A desired configuration is retained and re-signed on every server connect; a year keeps a
# station that was switched off for months able to apply it when it comes back.
VALID_MS = 365 * 24 * 3600 * 1000
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.05, 3600.0
MAX_UNITS, MAX_UNIT_LENGTH = 256, 32
MAX_BYTES = 128 * 1024  # a full units table, signed (base64) and wrapped, fits easily
MAX_THRESHOLD_LENGTH = 40  # digits enough for any reading; longer is abuse
SETTINGS = frozenset({"interval_s", "heartbeat_s", "units", "thresholds"})
_CHANNEL = re.compile(r"[a-z0-9_.-]{1,64}")
Outcome = Literal["applied", "rejected"]


class ConfigError(ValueError):
    """A configuration a station must not run, with the reason."""


def _interval(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{name} must be a number of seconds: {value!r}"
        raise ConfigError(msg)
    number = float(value)
    if not low <= number <= high:
        msg = f"{name} must be {low:g}-{high:g} s: {number:g}"
        raise ConfigError(msg)
    return number


def _units(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_UNITS:
        msg = f"units must map at most {MAX_UNITS} channels to a unit"
        raise ConfigError(msg)
    for channel, unit in value.items():
        if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
            msg = f"units: bad channel name {channel!r}"
            raise ConfigError(msg)
        if not isinstance(unit, str) or len(unit) > MAX_UNIT_LENGTH:
            msg = f"units: {channel}'s unit must be text of at most {MAX_UNIT_LENGTH} characters"
            raise ConfigError(msg)
    return dict(value)


def threshold_value(value: object) -> Decimal | None:
    """A threshold as an exact decimal: a JSON integer, float or decimal string; else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _thresholds(value: object) -> dict[str, dict[str, int | float | str]]:
    if not isinstance(value, dict) or len(value) > MAX_UNITS:
        msg = f"thresholds must map at most {MAX_UNITS} channels to their low and high"
        raise ConfigError(msg)
    checked: dict[str, dict[str, int | float | str]] = {}
    for channel, bounds in value.items():
        if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
            msg = f"thresholds: bad channel name {channel!r}"
            raise ConfigError(msg)
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"low", "high"}:
            msg = f"thresholds: {channel} needs a low, a high or both, and nothing else"
            raise ConfigError(msg)
        numbers = {name: threshold_value(bound) for name, bound in bounds.items()}
        for name, number in numbers.items():
            if number is None or len(str(bounds[name])) > MAX_THRESHOLD_LENGTH:
                msg = f"thresholds: {channel}'s {name} must be a number: {bounds[name]!r}"
                raise ConfigError(msg)
        low, high = numbers.get("low"), numbers.get("high")
        if low is not None and high is not None and low > high:
            msg = f"thresholds: {channel}'s low {bounds['low']} is above its high {bounds['high']}"
            raise ConfigError(msg)
        checked[channel] = dict(bounds)
    return checked


def check_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` if a station can run it, else ``ConfigError`` saying why.

    ``interval_s``: seconds between samples; ``heartbeat_s``: whole seconds between
    heartbeats; ``units``: channel → unit, for people; ``thresholds``: channel → ``{"low",
    "high"}`` numbers (or decimal strings) the server raises alarms on (the station keeps
    sampling regardless). Anything else is refused: a typo must
    not pass for a setting that silently does nothing.
    """
    unknown = sorted(set(config) - SETTINGS)
    if unknown:
        msg = f"unknown setting(s): {', '.join(map(str, unknown))}"
        raise ConfigError(msg)
    checked: dict[str, Any] = {}
    if "interval_s" in config:
        checked["interval_s"] = _interval(
            "interval_s", config["interval_s"], MIN_INTERVAL_S, MAX_INTERVAL_S
        )
    if "heartbeat_s" in config:
        beat = config["heartbeat_s"]
        if type(beat) is not int or not 1 <= beat <= 3600:
            msg = f"heartbeat_s must be whole seconds, 1-3600: {beat!r}"
            raise ConfigError(msg)
        checked["heartbeat_s"] = beat
    if "units" in config:
        checked["units"] = _units(config["units"])
    if "thresholds" in config:
        checked["thresholds"] = _thresholds(config["thresholds"])
    return checked


@dataclass(frozen=True)
class DesiredConfig:
    """The configuration the server wants a device to run, at a version."""

    device_id: str
    version: int
    settings: dict[str, Any] = field(default_factory=dict)

    def signed(self, key: SigningKey, *, now_ms: int) -> bytes:
        """The retained ``config/desired`` payload: an envelope holding the JWS."""
        body = {
            "device_id": self.device_id,
            "version": self.version,
            "config": self.settings,
            "issued_at": now_ms,
            "expires_at": now_ms + VALID_MS,
        }
        return wrap_signed(DESIRED_TYPE, self.device_id, body, key)


@dataclass(frozen=True)
class Refused:
    """A desired configuration the station will not run, and why (its version if known)."""

    detail: str
    version: int | None = None


def read_desired(
    payload: bytes, device_id: str, keys: Iterable[VerifyingKey], *, now_ms: int
) -> DesiredConfig | Refused:
    """The verified, checked desired configuration in ``payload``, or why it is refused."""
    signed = unwrap_signed(
        payload, DESIRED_TYPE, device_id, keys, max_bytes=MAX_BYTES, what="configuration"
    )
    if isinstance(signed, str):
        return Refused(signed)
    token, trusted = signed
    try:
        body = verify_envelope(token, trusted, now_ms=now_ms)
    except SignatureError as error:
        return Refused(f"signature: {error}")
    version = json_count(body.get("version"))
    if body.get("device_id") != device_id:  # a token signed for another device, re-wrapped
        return Refused(f"signed for {body.get('device_id')!r}, not {device_id!r}", version)
    if not version:
        return Refused(f"bad version {body.get('version')!r}")
    config = body.get("config")
    if not isinstance(config, dict):
        return Refused("config is not an object", version)
    try:
        return DesiredConfig(device_id, version, check_settings(config))
    except ConfigError as error:
        return Refused(str(error), version)


@dataclass(frozen=True)
class ConfigReport:
    """What a station runs (version and settings) and how its last desired version went."""

    device_id: str
    version: int  # applied; 0 before any
    settings: dict[str, Any]
    outcome: Outcome
    desired_version: int  # the desired version the outcome is about
    detail: str = ""

    def encode(self) -> bytes:
        """The retained ``config/reported`` payload."""
        return encode(
            {
                "v": VERSION,
                "type": REPORTED_TYPE,
                "device_id": self.device_id,
                "version": self.version,
                "config": self.settings,
                "outcome": self.outcome,
                "desired_version": self.desired_version,
                "detail": self.detail[:512],
            }
        )

    @classmethod
    def parse(cls, payload: bytes, device_id: str) -> ConfigReport | Drop:
        """A report received on ``device_id``'s topic, or why it is dropped."""
        message = read_envelope(payload, REPORTED_TYPE, device_id, max_bytes=MAX_BYTES)
        if isinstance(message, Drop):
            return message
        version, desired = (
            json_count(message.get("version")),
            json_count(message.get("desired_version")),
        )
        outcome, config = message.get("outcome"), message.get("config")
        detail = message.get("detail", "")
        if version is None or desired is None or outcome not in ("applied", "rejected"):
            return Drop(DropReason.MALFORMED, f"bad config report: {message}"[:300])
        if not isinstance(config, dict) or not isinstance(detail, str):
            return Drop(DropReason.MALFORMED, "config report: config or detail malformed")
        return cls(device_id, version, config, outcome, desired, detail[:512])
