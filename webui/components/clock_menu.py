"""The header's clock: names the zone every time on the page reads in, and lets UTC be chosen."""

from __future__ import annotations

from datetime import UTC

from nicegui import events, ui

from webui.components import browser_time
from webui.forms import view_only


def clock_menu() -> None:
    """A chip naming the page's zone; its menu switches every time to UTC and back.

    The choice is kept for the person (``browser_time.set_utc``) and the page is built anew,
    so the header, values, charts and lists all change together.
    """
    zone = browser_time.known_zone()
    abbreviation = browser_time.zone_abbreviation(zone)
    key = browser_time.zone_key(zone)
    label = key if key == abbreviation else f"{_readable(key)} ({abbreviation})"
    with (
        ui.button(f"Times: {label}", icon="schedule")
        .props("flat dense no-caps color=white")
        .mark("time-zone"),
        ui.menu(),
        ui.column().classes("p-3 gap-1"),
    ):
        browser = browser_time.browser_zone()
        said = "not yet known" if browser is None else _readable(browser_time.zone_key(browser))
        ui.label(f"This browser's zone: {said}").classes("text-sm text-slate-600")

        @view_only  # how this person's own pages read the time, nothing anyone else sees
        def choose(event: events.ValueChangeEventArguments) -> None:
            browser_time.set_utc(bool(event.value))
            ui.navigate.reload()

        ui.switch("Show times in UTC", value=zone is UTC, on_change=choose).mark("utc-switch")
        ui.label("Exports and the API are always in UTC.").classes("text-xs text-slate-500")


def _readable(key: str) -> str:
    """``America/New_York`` as people write it: ``America/New York``."""
    return key.replace("_", " ")
