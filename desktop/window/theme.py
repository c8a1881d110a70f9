"""The station window's look: a light and a dark theme, their colours, and which one is in use.

Rules:

- **It follows the system** unless forced: Qt reports the desktop's colour scheme
  (``QStyleHints.colorScheme``) and announces a change (``colorSchemeChanged``); the window
  switches while it runs. A platform that does not say (``Unknown``: offscreen, older
  desktops) gets the light theme. ``PP_WINDOW_THEME=light`` or ``dark`` forces one
  (``system``, the default, follows); any other value is refused, not guessed.
- **One module owns every colour.** Views never write a colour: they give a label a *tone*
  (``set_tone``), and the application's style sheet, rebuilt for each theme, paints it. So
  a theme change repaints every state at once, and the chart asks the theme for its pens.
- **A state is a word first**: the tone only adds colour to words that already say it, so a
  person who cannot tell red from green (or a grey-scale printout) loses nothing.
- **Readable on both**: text tones reach 4.5:1 against the window (WCAG AA for text), white
  on a filled badge 4.5:1, chart lines 3:1 against the chart (WCAG's minimum for graphics).
  The tests measure these ratios with ``contrast``.

This module has no Qt in it (the window's options read ``PP_WINDOW_THEME`` before Qt loads);
``appearance.py`` puts a theme on the Qt application.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

THEME_ENV = "PP_WINDOW_THEME"


class Scheme(StrEnum):
    """Which theme a person asked for: the system's, or one forced."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"


class Tone(StrEnum):
    """What a state means to the person watching; each theme gives every tone its colours."""

    OK = "ok"  # working as it should; the only green (a connected link, an answer accepted)
    BUSY = "busy"  # under way, nothing wrong: replaying, waiting for the server
    WARN = "warn"  # degraded, recovers by itself: reconnecting, samples held back
    BAD = "bad"  # needs a person: refused, failed, offline
    NEUTRAL = "neutral"  # nothing to signal: plain muted text


@dataclass(frozen=True)
class Theme:
    """Every colour the window uses, as ``#rrggbb``."""

    name: str
    dark: bool
    window: str  # behind everything
    surface: str  # group boxes, tables, inputs: one step off the window
    alternate: str  # every other table row
    text: str
    muted: str  # notes and labels that support a value
    faint: str  # disabled controls: still legible, plainly not active
    border: str
    button: str
    accent: str  # selection, focus, progress
    on_accent: str  # text on the accent
    tone_text: Mapping[Tone, str]  # a state written as coloured text on the window
    tone_fill: Mapping[Tone, str]  # a state's badge: white bold text on this
    chart_background: str
    chart_foreground: str  # axes, ticks, titles
    series: tuple[str, ...]  # one line colour per channel, in order; repeats past the end

    def series_colour(self, index: int) -> str:
        """The line colour of the chart's ``index``-th channel."""
        return self.series[index % len(self.series)]


ON_FILL = "#ffffff"  # a badge's word, on every tone's fill
# Badges carry white text on these in both themes: mid-dark fills stand out on a light
# window and on a dark one alike, and keep white text above 4.5:1.
_FILLS = {
    Tone.OK: "#1e7b34",
    Tone.BUSY: "#1d5fc2",
    Tone.WARN: "#a35200",  # amber light enough to read as amber, dark enough for white text
    Tone.BAD: "#c62828",
    Tone.NEUTRAL: "#5b6672",
}

LIGHT = Theme(
    name="light",
    dark=False,
    window="#f3f5f8",  # a cool off-white: surfaces in white lift off it without borders
    surface="#ffffff",
    alternate="#f2f5f9",
    text="#1f2933",
    muted="#56616d",
    faint="#98a2ad",
    border="#d3dae2",
    button="#f9fafb",
    accent="#1d5fc2",
    on_accent="#ffffff",
    tone_text={
        Tone.OK: "#1b6e2f",
        Tone.BUSY: "#1d5fc2",
        Tone.WARN: "#9a4d00",
        Tone.BAD: "#b71c1c",
        Tone.NEUTRAL: "#56616d",
    },
    tone_fill=_FILLS,
    chart_background="#ffffff",
    chart_foreground="#3d4854",
    # Tableau-like hues darkened to 3:1 on white; no yellow, which washes out on white.
    series=("#1f6fb2", "#c9510c", "#2a8a3e", "#8e44ad", "#00897b", "#c2185b", "#7a6a00"),
)

DARK = Theme(
    name="dark",
    dark=True,
    window="#16191e",  # near black, a touch blue: easy on the eyes in a dim control room
    surface="#1f242b",
    alternate="#252b33",
    text="#e3e8ee",
    muted="#9aa6b2",
    faint="#66717d",
    border="#363e48",
    button="#2a3039",
    accent="#2563eb",  # white selected text on it stays above 4.5:1
    on_accent="#ffffff",
    tone_text={
        Tone.OK: "#5fd38a",
        Tone.BUSY: "#7cb4ff",
        Tone.WARN: "#f5b041",
        Tone.BAD: "#ff7b72",
        Tone.NEUTRAL: "#9aa6b2",
    },
    tone_fill=_FILLS,
    chart_background="#1f242b",  # the surface's colour: the chart is one of the panels
    chart_foreground="#c3ccd6",
    # The same hues, lightened to stand out on the dark chart; the yellow works here.
    series=("#5aa9f0", "#ff9e57", "#5fd38a", "#c792ea", "#3dd6d0", "#ff79a8", "#e5d04b"),
)


def chosen_scheme(environ: Mapping[str, str] | None = None) -> Scheme:
    """The scheme ``PP_WINDOW_THEME`` asks for (system when unset or empty)."""
    value = (os.environ if environ is None else environ).get(THEME_ENV, "").strip().lower()
    try:
        return Scheme(value or Scheme.SYSTEM)
    except ValueError:
        names = ", ".join(scheme.value for scheme in Scheme)
        msg = f"{THEME_ENV} must be one of {names}: {value!r}"
        raise ValueError(msg) from None


def theme_for(scheme: Scheme, system_is_dark: bool) -> Theme:
    """The theme to show: the forced one, else the system's."""
    if scheme is Scheme.SYSTEM:
        return DARK if system_is_dark else LIGHT
    return DARK if scheme is Scheme.DARK else LIGHT


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two ``#rrggbb`` colours, from 1 (same) to 21."""
    lighter, darker = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
