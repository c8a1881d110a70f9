"""Prometheus metrics of the MQTT side, one registry per server (tests get their own)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.mqtt.routing import Router

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Batch sizes from one sample to a full COPY; lag from a fast commit to a stalled database.
ROW_BUCKETS = (1, 10, 100, 1_000, 5_000, 20_000, 100_000)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _LinkCollector(Collector):
    """Reads the router's counters and the link and presence state at scrape time."""

    def __init__(
        self, router: Router, link_up: Callable[[], bool], online: Callable[[], int]
    ) -> None:
        self._router, self._link_up, self._online = router, link_up, online

    def collect(self) -> Iterator[Metric]:
        received = CounterMetricFamily("pp_mqtt_messages_received", "MQTT messages received")
        received.add_metric([], self._router.received)
        yield received
        dropped = CounterMetricFamily(
            "pp_mqtt_messages_dropped", "MQTT messages dropped, by reason", labels=["reason"]
        )
        for reason, count in sorted(self._router.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily(
            "pp_broker_link_up", "1 while the server is connected to the broker", self._link_up()
        )
        yield GaugeMetricFamily(
            "pp_devices_online", "devices whose status is online", self._online()
        )


class _FanoutCollector(Collector):
    """Reads the fan-out's counters at scrape time (they stay 0 on a single server)."""

    def __init__(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        sent, received, dropped = self._counts()
        yield CounterMetricFamily(
            "pp_fanout_payloads_sent", "NOTIFY payloads told to the other replicas", sent
        )
        yield CounterMetricFamily(
            "pp_fanout_payloads_received", "NOTIFY payloads of other replicas taken", received
        )
        yield CounterMetricFamily(
            "pp_fanout_samples_dropped",
            "samples not told to the other replicas (the fan-out fell behind)",
            dropped,
        )


class Metrics:
    """The instruments ingest updates, and the text ``GET /metrics`` returns."""

    def __init__(
        self, router: Router, link_up: Callable[[], bool], online: Callable[[], int]
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_LinkCollector(router, link_up, online))
        self.rows_stored = Counter(
            "pp_telemetry_rows",
            "telemetry rows committed (duplicates included)",
            registry=self.registry,
        )
        self.quarantined = Counter(
            "pp_telemetry_quarantined", "samples quarantined", registry=self.registry
        )
        self.acks = Counter("pp_telemetry_acks", "ack watermarks published", registry=self.registry)
        self.store_failures = Counter(
            "pp_ingest_store_failures",
            "transactions that failed (their samples are replayed)",
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "pp_ingest_batch_rows",
            "rows per ingest transaction",
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        self.lag = Histogram(
            "pp_ingest_lag_seconds",
            "from a message's arrival to its commit",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.retention_partitions = Counter(
            "pp_telemetry_retention_partitions_dropped",
            "day partitions of telemetry_samples dropped past the retention",
            registry=self.registry,
        )
        self.retention_rows = Counter(
            "pp_telemetry_retention_rows_deleted",
            "telemetry rows removed past the retention (dropped partitions' included), by table",
            labelnames=["table"],
            registry=self.registry,
        )
        self.partitions = Gauge(
            "pp_telemetry_partitions",
            "day partitions of telemetry_samples at the last upkeep (PostgreSQL; 0 on SQLite)",
            registry=self.registry,
        )

    def watch_fanout(self, counts: Callable[[], tuple[int, int, int]]) -> None:
        """Report the fan-out's (sent, received, dropped) counts, read at each scrape."""
        self.registry.register(_FanoutCollector(counts))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
