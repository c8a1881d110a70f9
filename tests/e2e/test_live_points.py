"""live.js in real Chromium: chart points arriving out of order are drawn in time order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LIVE_JS = Path(__file__).resolve().parents[2] / "webui" / "components" / "live.js"
WINDOW_MS = 10_000
# A stand-in for NiceGUI's echart element: live.js reads and sets only its series' data.
CHARTS = """
window.charts = {};
window.getElement = (id) => window.charts[id];
window.makeChart = (id, series) => {
  const option = { series: Array.from({ length: series }, () => ({ data: [] })) };
  window.charts[id] = { chart: {
    getOption: () => option,
    setOption: (o) => o.series.forEach((s, i) => { option.series[i].data = s.data; }),
  } };
};
window.seriesOf = (id) => window.charts[id].chart.getOption().series.map((s) => s.data);
"""


def _page(browser: Any) -> Any:
    browser.get("about:blank")
    browser.execute_script(CHARTS + LIVE_JS.read_text())
    return browser


def _append(browser: Any, updates: dict[str, list[list[list[float]]]]) -> None:
    browser.execute_script("window.ppLive.append(arguments[0], arguments[1])", updates, WINDOW_MS)


def _times(browser: Any, chart: str) -> list[list[int]]:
    series = browser.execute_script("return window.seriesOf(arguments[0])", chart)
    return [[int(point[0]) for point in points] for points in series]


def test_late_points_take_their_place_in_time(browser: Any) -> None:
    """A point older than the newest drawn, in a later tick or within one, goes in order."""
    page = _page(browser)
    page.execute_script("window.makeChart('c1', 2)")
    _append(page, {"c1": [[[1000, 1], [3000, 3]], [[1500, 9]]]})
    _append(page, {"c1": [[[2000, 2]], []]})  # another replica's, fanned out late
    _append(page, {"c1": [[[5000, 5], [4000, 4], [3000, 3.5]], [[1200, 8], [1800, 7]]]})
    assert _times(page, "c1") == [[1000, 2000, 3000, 3000, 4000, 5000], [1200, 1500, 1800]]
    _append(page, {"c1": [[[14_000, 6]], []]})  # the window slides: older points leave
    assert _times(page, "c1") == [[4000, 5000, 14_000], []]


def test_ordering_costs_little_at_ten_points_a_second_on_many_channels(browser: Any) -> None:
    """Eight full series (1,200 points), a tick of one point each, every tenth one late."""
    page = _page(browser)
    took_ms = page.execute_script(
        """
        window.makeChart('c2', 8);
        const tick = (n) => Array.from({ length: 8 }, () => [[n * 100 - (n % 10 ? 0 : 250), n]]);
        for (let n = 1; n <= 1200; n++) window.ppLive.append({ c2: tick(n) }, 120000);
        const start = performance.now();
        for (let n = 1201; n <= 1700; n++) window.ppLive.append({ c2: tick(n) }, 120000);
        return (performance.now() - start) / 500;
        """
    )
    times = _times(page, "c2")
    assert all(len(series) == 1201 for series in times)  # 120 s at 10 Hz, both ends kept
    assert all(series == sorted(series) for series in times)
    assert took_ms < 5, f"{took_ms:.3f} ms per tick"
