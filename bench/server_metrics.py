"""The server's own counters over a window, from its ``GET /metrics`` (Prometheus text).

What the stations cannot see: messages the server received, rows it committed (a resent
sample counts again: rows above the samples taken are resends), acks it published, what it
dropped and why, and how long a message waited from arrival to commit.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Scrape = dict[str, float]
COUNTERS = {
    "pp_mqtt_messages_received_total": "messages",
    "pp_telemetry_rows_total": "rows",
    "pp_telemetry_acks_total": "acks",
    "pp_ingest_store_failures_total": "store_failures",
    "pp_ingest_lag_seconds_sum": "lag_sum_s",
    "pp_ingest_lag_seconds_count": "lag_count",
}


def scrape(url: str) -> Scrape:
    """The counters now (an empty scrape when the server does not answer)."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    found: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in COUNTERS:
                found[COUNTERS[sample.name]] = sample.value
            elif sample.name == "pp_mqtt_messages_dropped_total":
                key = f"dropped_{sample.labels.get('reason', '')}"
                found[key] = found.get(key, 0.0) + sample.value
    return found


def rates(before: Scrape, after: Scrape, seconds: float) -> dict[str, float]:
    """Each counter's rate a second over the window; the mean arrival → commit wait."""
    figures = {
        f"server_{key}_per_s": (after.get(key, 0.0) - before.get(key, 0.0)) / seconds
        for key in sorted(after.keys() | before.keys())
        if not key.startswith("lag_")
    }
    count = after.get("lag_count", 0.0) - before.get("lag_count", 0.0)
    lag = after.get("lag_sum_s", 0.0) - before.get("lag_sum_s", 0.0)
    figures["server_ingest_lag_mean_ms"] = 1000 * lag / count if count else float("nan")
    return figures
