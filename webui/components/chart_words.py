"""What charts say in words: booleans as On/Off states, what "replayed" means, units on axes.

Shared by the live charts of the device page and the history chart, so both read alike.
ECharts options that are functions are written as JavaScript under a ``:`` key (NiceGUI
turns them into functions in the browser).
"""

from __future__ import annotations

ON, OFF = "On", "Off"
# A boolean's 0/1 in words; a history bucket's mean between them is the share of time On.
_STATE_WORDS = f"v => v >= 1 ? '{ON}' : v <= 0 ? '{OFF}' : Math.round(v * 100) + '% {ON}'"
REPLAYED_HINT = (
    "Replayed: samples the station stored while it could not send them, sent once the link "
    "was back. Each is drawn at the time it was taken; it reached the server late."
)
_HINT_JS = REPLAYED_HINT.replace("'", "\\'")


def state_word(value: bool) -> str:
    """A boolean as its chart names it: On or Off."""
    return ON if value else OFF


def state_axis(name: str = "") -> dict[str, object]:
    """A y axis with two places, Off and On: a boolean is a state, not a quantity."""
    return {
        "type": "value",
        "name": name,
        "min": 0,
        "max": 1,
        "interval": 1,
        "axisLabel": {":formatter": f"v => v >= 1 ? '{ON}' : '{OFF}'"},
    }


def state_series() -> dict[str, object]:
    """A boolean's line: steps between the states, the On time shaded as a band."""
    return {"step": "end", "areaStyle": {"opacity": 0.3}}


def state_tooltip() -> dict[str, object]:
    """A tooltip that says On or Off (or the share On, for a history bucket)."""
    return {"trigger": "axis", ":valueFormatter": _STATE_WORDS}


def value_axis(unit: str, **more: object) -> dict[str, object]:
    """A numeric y axis named by its unit (no unit: no name, rather than a bare channel)."""
    return {"type": "value", "scale": True, "name": unit, **more}


def legend(**more: object) -> dict[str, object]:
    """A legend whose "replayed" entries explain themselves on hover."""
    return {
        "tooltip": {
            "show": True,
            "extraCssText": "max-width: 22rem; white-space: normal;",
            ":formatter": f"p => p.name.includes('replayed') ? '{_HINT_JS}' : p.name",
        },
        **more,
    }
