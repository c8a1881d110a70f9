"""Health names the broker link; /metrics speaks Prometheus' text format."""

from __future__ import annotations

import httpx
import pytest

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")


async def test_health_reports_a_disabled_broker_link(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["broker"]["state"] == "disabled"


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    assert "pp_broker_link_up 0.0" in lines
    assert "pp_mqtt_messages_received_total 0.0" in lines
    assert "# TYPE pp_ingest_lag_seconds histogram" in lines
