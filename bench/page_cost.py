"""Server CPU per live page: the demo's CPU time over a window with N device pages open.

Load pages are real Chromium tabs on the stations' device pages. They are muted: NiceGUI's
own client keeps the socket (handshake, pings, acks) and the tab counts the page's
messages instead of applying them, because a rendering live page costs Chromium about 3.5 %
of a core, and fifty of them would starve the server being measured on a small machine
(they then miss socket.io's pong deadline, are dropped and reload). The server cannot tell
a muted tab from a rendering one; a window with rendering tabs checks that it costs the same.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from bench.browser import Browser
from bench.cpu import machine_seconds
from bench.demo_process import DemoProcess

SETTLE_S = 4.0  # after pages open or close: loads finish, a closed page's client (3 s) goes


@dataclass(frozen=True)
class CpuReading:
    """CPU used over one window with ``pages`` open, in % of one core."""

    pages: int
    rendering: bool  # tabs that apply what they receive, as a person's browser does
    live: int  # pages that heard from the server at least every other second
    server: float  # the demo process: server, ingest and its three stations
    broker: float
    browser: float  # Chromium and chromedriver: the load generator, not the server
    machine: float  # every process on the machine, to tell whether the server was starved

    @property
    def key(self) -> str:
        """How the figures name this window: "10", or "10 rendering"."""
        return f"{self.pages} rendering" if self.rendering else str(self.pages)


def cpu_window(demo: DemoProcess, browser: Browser, seconds: float) -> list[float]:
    """Server, broker, browser and machine CPU over ``seconds``, in % of one core."""

    def now() -> list[float]:
        return [*demo.cpu_seconds(), browser.cpu_seconds(), machine_seconds()[0]]

    before, start = now(), time.monotonic()
    time.sleep(seconds)
    after, wall = now(), time.monotonic() - start
    return [(b - a) / wall * 100 for a, b in zip(before, after, strict=True)]


def cpu_per_page(
    demo: DemoProcess,
    browser: Browser,
    stations: list[str],
    *,
    counts: list[int],
    rendering: int,
    window: float,
) -> list[CpuReading]:
    """No page open, then each count of muted live pages, then ``rendering`` rendering ones.

    The pages go round the ``stations``' device pages.
    """
    total = max(*counts, rendering)
    urls = [f"{demo.url}/devices/{stations[i % len(stations)]}" for i in range(total)]
    browser.close_pages()
    time.sleep(SETTLE_S)
    _progress(f"CPU: {window:g} s with no page open")
    readings = [CpuReading(0, False, 0, *cpu_window(demo, browser, window))]
    for count in counts:
        opened = len(browser.pages)
        _progress(f"CPU: {count - opened} more muted pages, then {window:g} s with {count}")
        browser.open_pages(urls[opened:count], muted=True)
        readings.append(_loaded(demo, browser, count, False, window))
    browser.close_pages()
    if rendering:
        _progress(f"CPU: {rendering} rendering pages instead, then {window:g} s")
        browser.open_pages(urls[:rendering], muted=False)
        readings.append(_loaded(demo, browser, rendering, True, window))
        browser.close_pages()
    return readings


def _loaded(
    demo: DemoProcess, browser: Browser, count: int, rendering: bool, window: float
) -> CpuReading:
    time.sleep(SETTLE_S)
    figures = cpu_window(demo, browser, window)
    return CpuReading(count, rendering, browser.live_pages(), *figures)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
