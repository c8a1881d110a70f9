"""The configuration form's checks, said in the words its fields are labelled with.

The station's own checks (``core.protocol.station_config``) name settings as the protocol
spells them (``interval_s``); a person filling the form reads "Seconds between samples".
The form checks first, with the same limits, so what it shows is a sentence about a field.
"""

from __future__ import annotations

from core.protocol.station_config import MAX_INTERVAL_S, MIN_INTERVAL_S

INTERVAL_LABEL = "Seconds between samples"
HEARTBEAT_LABEL = "Seconds between heartbeats"
HEARTBEAT_RANGE = (1, 3600)  # whole seconds, as check_settings holds them


def interval_problem(value: float | None) -> str | None:
    """Why the sampling interval cannot be sent, in words (None: it can; empty can)."""
    low, high = MIN_INTERVAL_S, MAX_INTERVAL_S
    if value is None:  # left empty: the station's own setting
        return None
    if value < low:
        return f"{INTERVAL_LABEL} must be between {low:g} and {high:g}; {value:g} is too short."
    if value > high:
        return f"{INTERVAL_LABEL} must be between {low:g} and {high:g}; {value:g} is too long."
    return None


def heartbeat_problem(value: float | None) -> str | None:
    """Why the heartbeat interval cannot be sent, in words (None: it can; empty can)."""
    low, high = HEARTBEAT_RANGE
    if value is None:  # left empty: the station's own setting
        return None
    if not float(value).is_integer():
        return f"{HEARTBEAT_LABEL} must be a whole number; {value:g} is not."
    if value < low:
        return f"{HEARTBEAT_LABEL} must be between {low} and {high}; {value:g} is too short."
    if value > high:
        return f"{HEARTBEAT_LABEL} must be between {low} and {high}; {value:g} is too long."
    return None
