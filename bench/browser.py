"""Headless Chromium for benches: sign in, watch a value change, keep many live pages open."""

from __future__ import annotations

import time
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from bench.cpu import descendants, process_seconds

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's packages
FLAGS = (  # as tests/e2e: no sandbox in containers, nothing phoning home
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
)
WAIT_S = 30.0  # argon2 at sign-in, and page builds on a loaded two-core machine
POLL_S = 0.1
# Tabs opened together: fifty at once overrun the server's 3 s page-build limit on a
# two-core machine, which is not the load being measured; a few at once just load faster.
OPEN_AT_ONCE = 5

# Notes each change of one value element's text at the next animation frame: the frame
# that paints it. Observing the grid, not the element, survives a re-rendered element.
WATCH = """
const selector = `[data-value="${arguments[0]}"]`;
const seen = window.ppBench = [];
let last = document.querySelector(selector).textContent;
new MutationObserver(() => {
  const text = document.querySelector(selector)?.textContent ?? '';
  if (text === last) return;
  last = text;
  requestAnimationFrame(() => seen.push([text, Date.now()]));
}).observe(document.querySelector(selector).parentElement,
           {subtree: true, childList: true, characterData: true});
"""
WATCH_READ = "return window.ppBench"
# A rendering load tab counts changes of its page's current values (each sample moves
# its 'at' time).
COUNT = """
window.ppChanges = 0;
new MutationObserver(() => { window.ppChanges += 1; }).observe(
  document.querySelector('[data-value]').parentElement,
  {subtree: true, childList: true, characterData: true});
"""
# A muted load tab keeps NiceGUI's own socket (handshake, pings, acks) but only counts the
# page's messages instead of applying them: a rendering live page costs Chromium about
# 3.5 % of a core, so fifty of them would starve the server being measured on a small machine.
MUTE = """
window.ppChanges = 0;
for (const event of ['update', 'run_javascript']) {
  window.socket.off(event);
  window.socket.on(event, (message) => {
    // What NiceGUI's handler does first, so its acks still let the server prune its outbox.
    if (message?._id >= window.nextMessageId) window.nextMessageId = message._id + 1;
    window.ppChanges += 1;
  });
}
"""
COUNTED = "const n = window.ppChanges ?? null; window.ppChanges = 0; return n"


class Browser:
    """One headless Chromium: a home tab for the probe page, more tabs for load."""

    def __init__(self, base_url: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        self.base = base_url
        self.driver: Any = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(WAIT_S)
        self.driver.set_script_timeout(WAIT_S)
        self.home = self.driver.current_window_handle
        self.pages: dict[str, str] = {}  # load tabs: handle → the script counting changes
        self.counted_at = time.monotonic()

    def sign_in(self, username: str, password: str) -> None:
        """Through the sign-in page, as a person would."""
        self.driver.get(f"{self.base}/login")
        self._type("Username", username)
        self._type("Password", password + Keys.ENTER)
        signed_in = f'//*[contains(text(), "{username} · ")]'  # the header names the user
        self._wait(ec.presence_of_element_located((By.XPATH, signed_in)))

    def open_device(self, device_id: str) -> None:
        """Show /devices/{device_id} in the home tab."""
        self.driver.get(f"{self.base}/devices/{device_id}")

    def watch(self, channel: str) -> None:
        """Once ``channel`` shows a value, note every change of it from now on."""
        self._wait(ec.presence_of_element_located((By.CSS_SELECTOR, f"[data-value={channel}]")))
        self.driver.execute_script(WATCH, channel)

    def watched_until(self, value: int, timeout: float) -> list[tuple[int, float]]:
        """The (value, ms on the wall clock) changes noted, once ``value`` shows or at timeout."""
        deadline = time.monotonic() + timeout
        while True:
            shown = [(int(text), at) for text, at in self.driver.execute_script(WATCH_READ)]
            if (shown and shown[-1][0] >= value) or time.monotonic() > deadline:
                return shown
            time.sleep(POLL_S)

    def open_pages(self, urls: list[str], *, muted: bool) -> None:
        """Open each URL in a tab of its own; return once each shows values and is counted."""
        script = MUTE if muted else COUNT
        for low in range(0, len(urls), OPEN_AT_ONCE):
            self.driver.switch_to.window(self.home)
            before = set(self.driver.window_handles)
            batch = urls[low : low + OPEN_AT_ONCE]
            for url in batch:
                self.driver.execute_script("window.open(arguments[0], '_blank')", url)
            expected = len(before) + len(batch)
            self._wait(lambda d: len(d.window_handles) == expected)  # noqa: B023 (waited here)
            for handle in set(self.driver.window_handles) - before:
                self.driver.switch_to.window(handle)
                self._wait(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-value]")))
                self.driver.execute_script(script)
                self.pages[handle] = script
        self.driver.switch_to.window(self.home)
        self.counted_at = time.monotonic()

    def live_pages(self) -> int:
        """Load tabs that heard from the server at least every other second since last asked."""
        seconds = time.monotonic() - self.counted_at
        live = 0
        for handle, script in self.pages.items():
            self.driver.switch_to.window(handle)
            changes = self.driver.execute_script(COUNTED)
            if changes is None:  # reloaded: the server had dropped it; count it from now
                self.driver.execute_script(script)
            live += (changes or 0) >= seconds / 2
        self.driver.switch_to.window(self.home)
        self.counted_at = time.monotonic()
        return live

    def close_pages(self) -> None:
        """Close the load tabs and leave the home tab blank: no page of ours is open."""
        for handle in self.pages:
            self.driver.switch_to.window(handle)
            self.driver.close()
        self.pages = {}
        self.driver.switch_to.window(self.home)
        self.driver.get("about:blank")

    def cpu_seconds(self) -> float:
        """CPU time so far of chromedriver, Chromium and all its processes."""
        driver = self.driver.service.process.pid
        return sum(process_seconds(pid) for pid in [driver, *descendants(driver)])

    def quit(self) -> None:
        """Close the browser and its driver."""
        self.driver.quit()

    def _type(self, label: str, text: str) -> None:
        field = self._wait(
            ec.element_to_be_clickable((By.XPATH, f"//input[@aria-label='{label}']"))
        )
        field.clear()
        field.send_keys(text)

    def _wait(self, condition: Any) -> Any:
        return WebDriverWait(self.driver, WAIT_S, POLL_S).until(condition)
