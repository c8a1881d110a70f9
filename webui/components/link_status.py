"""The two links every page shows: browser ↔ server and server ↔ broker, since when.

Both times read in the page's zone (``browser_time.known_zone``) and name it: the broker's
is written here, the browser's by live.js, which the badge tells the zone and its name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from nicegui import ui

from webui.components.browser_time import known_zone, named, zone_abbreviation, zone_key
from webui.components.ticker import Ticker

BROWSER_LINK_ID = "pp-browser-link"  # live.js keeps the badge of this id current
_COLORS = {"connected": "text-green-300", "disabled": "text-slate-300"}


def link_status(ticker: Ticker, broker_link: Callable[[], dict[str, str]]) -> None:
    """Both link badges; the broker one follows ``broker_link`` on the page's ticker."""
    zone = known_zone()
    # Only the browser can tell it lost the server, so this badge is driven by live.js.
    ui.html(
        f'<span id="{BROWSER_LINK_ID}" class="pp-link" data-zone="{escape(zone_key(zone))}"'
        f' data-abbr="{escape(zone_abbreviation(zone))}">Browser: connecting…</span>'
    ).mark("browser-link")
    broker = ui.label().mark("broker-link")
    shown: list[str] = [""]

    def update() -> None:
        link = broker_link()
        state = link["state"]
        text = f"Broker: {state}"
        if link["since"]:
            text += f" since {named(datetime.fromisoformat(link['since']), zone)}"
        if state != "connected" and link["detail"]:
            text += f" ({link['detail']})"
        if text != shown[0]:  # unchanged text sends nothing to the browser
            shown[0] = text
            broker.text = text
            broker.classes(replace=_COLORS.get(state, "text-red-300"))

    ticker.add(update)
