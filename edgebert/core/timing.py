"""Fair latency measurement: variants interleaved in rounds in one process, and their percentiles.

Used by `edgebert bench` and by the build stage (the latency cost of an accuracy budget). Torch-free.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LatencyStats:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput: float  # sequences per second
    iterations: int
    round_medians_ms: list[float] = field(default_factory=list)


def summarize(samples_ms: Sequence[float], batch_size: int, rounds: Sequence[Sequence[float]] = ()) -> LatencyStats:
    """Percentiles of per-call latency; throughput = sequences / total time spent in calls."""
    samples = np.asarray(samples_ms, dtype=float)
    if samples.size == 0:
        raise ValueError("no timing samples")
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    return LatencyStats(
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        mean_ms=float(samples.mean()),
        throughput=float(batch_size * samples.size / (samples.sum() / 1000.0)),
        iterations=int(samples.size),
        round_medians_ms=[float(np.median(r)) for r in rounds if len(r)],
    )


def measure_interleaved(
    runners: dict[str, Callable[[], object]],
    *,
    rounds: int = 5,
    seconds_per_round: float = 1.0,
    warmup: int = 2,
    on_round: Callable[[int], None] | None = None,
) -> dict[str, list[list[float]]]:
    """Per-call times in ms, per runner, per round. Each runner gets `seconds_per_round` of calls per round,
    and the order rotates every round so machine noise hits all runners alike."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    names = list(runners)
    samples: dict[str, list[list[float]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            run, times, deadline = runners[name], [], time.perf_counter() + seconds_per_round
            while True:
                start = time.perf_counter()
                run()
                end = time.perf_counter()
                times.append((end - start) * 1000.0)
                if end >= deadline and len(times) >= 2:
                    break
            samples[name].append(times)
        if on_round:
            on_round(r)
    return samples


def median_ms(rounds: list[list[float]]) -> float:
    return float(np.median([t for r in rounds for t in r]))


def synthetic_batch(
    batch: int, tokens: int, vocab_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input_ids, attention_mask, token_type_ids), each (batch, tokens) int64: random ids from the upper half
    of the vocabulary (ordinary word pieces), full attention. Latency depends on the shape, not the ids."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(vocab_size // 2, vocab_size, size=(batch, tokens), dtype=np.int64)
    return ids, np.ones_like(ids), np.zeros_like(ids)
