"""`/metrics`: the server's counters and histograms, and the process's own (CPU seconds, resident memory, open file
descriptors, start time), in Prometheus' text format through prometheus-client. Each app has its own registry, so
several apps in one process (tests) never share counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

disable_created_metrics()  # no `*_created` series beside every counter: scrapers gain nothing from them here


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=self.registry)  # python_info
        r = self.registry
        self.requests = Counter("edgebert_requests", "Requests answered", ["path", "status"], registry=r)
        self.errors = Counter("edgebert_errors", "Requests answered with a 4xx or 5xx status", registry=r)
        self.latency = Histogram(  # every route, so /predict and / are seen as /v1/* are
            "edgebert_request_seconds", "Time from request to answer", ["path"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_rows = Histogram("edgebert_batch_rows", "Rows per model call", buckets=BATCH_BUCKETS, registry=r)
        self.rows = Counter("edgebert_rows", "Rows (texts) run through the model", registry=r)
        self.queued = Gauge("edgebert_queued_rows", "Rows waiting for the model", registry=r)

    def request(self, path: str, status: int, seconds: float) -> None:
        """path: a route of the app, or "other" (bounded label values: a scanner's URLs do not grow the registry)."""
        self.requests.labels(path=path, status=str(status)).inc()
        if status >= 400:
            self.errors.inc()
        self.latency.labels(path=path).observe(seconds)

    def batch(self, rows: int) -> None:
        self.batch_rows.observe(rows)
        self.rows.inc(rows)

    def render(self, queued_rows: int) -> str:
        self.queued.set(queued_rows)
        return generate_latest(self.registry).decode("utf-8")
