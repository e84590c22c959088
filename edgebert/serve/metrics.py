"""Prometheus text exposition (format 0.0.4) without a client library: a few counters and two histograms."""

from __future__ import annotations

import threading
from collections import Counter

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str) -> list[str]:
        out = [
            f'{name}_bucket{{le="{bound:g}"}} {count}' for bound, count in zip(self.buckets, self.counts, strict=True)
        ]
        return [*out, f'{name}_bucket{{le="+Inf"}} {self.n}', f"{name}_sum {self.total:.6f}", f"{name}_count {self.n}"]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (path, status) -> count
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_rows = Histogram(BATCH_BUCKETS)
        self.rows = 0

    def request(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(path, status)] += 1
            if path.startswith("/v1/"):
                self.latency.observe(seconds)

    def batch(self, rows: int) -> None:
        with self._lock:
            self.batch_rows.observe(rows)
            self.rows += rows

    def render(self, queued_rows: int) -> str:
        with self._lock:
            lines = ["# TYPE edgebert_requests_total counter"]
            lines += [
                f'edgebert_requests_total{{path="{path}",status="{status}"}} {n}'
                for (path, status), n in sorted(self.requests.items())
            ]
            errors = sum(n for (_, status), n in self.requests.items() if status >= 400)
            lines += ["# TYPE edgebert_errors_total counter", f"edgebert_errors_total {errors}"]
            lines += ["# TYPE edgebert_request_seconds histogram", *self.latency.lines("edgebert_request_seconds")]
            lines += ["# TYPE edgebert_batch_rows histogram", *self.batch_rows.lines("edgebert_batch_rows")]
            lines += ["# TYPE edgebert_rows_total counter", f"edgebert_rows_total {self.rows}"]
            lines += ["# TYPE edgebert_queued_rows gauge", f"edgebert_queued_rows {queued_rows}"]
        return "\n".join(lines) + "\n"
