"""CPU cost of an app that calls the model now and then: `edgebert bench ARTIFACT --idle RATE`.

A desktop app classifies a text every so often. Between calls, ONNX Runtime's worker threads may busy-wait
("spin") for the next one, burning CPU on an idle machine. This runs one call every 1/RATE seconds for a while,
in a fresh process per setting (spinning on, off; alternating rounds), and reports per request: the call's
latency, the CPU the process used inside the call, and the CPU it used in all (inside + between calls).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError

TEXTS = {
    "short": "Shares of the carmaker rose after it reported record quarterly sales in Europe and Asia.",  # ~20 tokens
    "long": "Shares of the carmaker rose after it reported record quarterly sales in Europe and Asia. " * 8,  # cut: 128
}


@dataclass(frozen=True)
class IdleConfig:
    rate: float  # requests per second
    seconds: float = 5.0  # per round and setting
    rounds: int = 2
    threads: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.rate) or not 0.1 <= self.rate <= 1000:
            raise InputError(f"--idle must be a request rate between 0.1 and 1000 per second, got {self.rate}.")
        if not math.isfinite(self.seconds) or not 0 < self.seconds <= 600:
            raise InputError(f"--seconds must be in (0, 600], got {self.seconds}.")


def measure_idle(artifact: Path, config: IdleConfig) -> dict:
    """Both settings, alternating in fresh processes; medians over rounds."""
    names = [f"{text}_{spin}" for text in TEXTS for spin in ("spinning_off", "spinning_on")]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(config.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            text, _, spin = name.partition("_")
            runs[name].append(_run_child(artifact, config, text=text, spinning=spin == "spinning_on"))
    summary = {}
    for name, rows in runs.items():
        keys = rows[0].keys()
        summary[name] = {k: float(np.median([row[k] for row in rows])) for k in keys}
    ratios = {
        text: {
            "off_vs_on_p50": summary[f"{text}_spinning_off"]["p50_ms"] / summary[f"{text}_spinning_on"]["p50_ms"],
            "off_vs_on_cpu_per_request": summary[f"{text}_spinning_off"]["cpu_ms_per_request"]
            / summary[f"{text}_spinning_on"]["cpu_ms_per_request"],
        }
        for text in TEXTS
    }
    return {
        "artifact": str(artifact),
        "rate_per_s": config.rate,
        "seconds": config.seconds,
        "rounds": config.rounds,
        "threads": config.threads,
        "runs": summary,
        "ratios": ratios,
    }


def format_idle(result: dict) -> str:
    lines = [
        f"idle cost at {result['rate_per_s']:g} requests/s ({result['artifact']})",
        "| text, threads | p50 ms | CPU ms inside the call | CPU ms per request, all | all / inside |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in result["runs"].items():
        lines.append(
            f"| {name.replace('_', ' ', 1).replace('_', ' ')} | {r['p50_ms']:.2f} | {r['cpu_ms_inside_call']:.2f} | "
            f"{r['cpu_ms_per_request']:.2f} | {r['overhead_ratio']:.2f}x |"
        )
    return "\n".join(lines)


def _run_child(artifact: Path, config: IdleConfig, *, text: str, spinning: bool) -> dict:
    code = (
        "import json, sys; from edgebert.bench.idle import _child; "
        "print(json.dumps(_child(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), "
        "None if sys.argv[4] == 'None' else int(sys.argv[4]), sys.argv[5] == '1', sys.argv[6])))"
    )
    args = [str(artifact), str(config.rate), str(config.seconds), str(config.threads), "1" if spinning else "0", text]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=config.seconds + 120
    )
    if result.returncode != 0:
        raise InputError(f"The idle-cost probe failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def _child(artifact: str, rate: float, seconds: float, threads: int | None, spinning: bool, text: str) -> dict:
    from ..runtime import Classifier

    clf = Classifier.load(artifact, threads=threads, spinning=spinning)
    for _ in range(5):
        clf.predict_logits([TEXTS[text]])
    time.sleep(0.5)  # let warm-up spinning settle before counting
    period = 1.0 / rate
    latencies, inside = [], 0.0
    cpu_start, start = time.process_time(), time.perf_counter()
    next_call = start
    while (now := time.perf_counter()) < start + seconds:
        if now < next_call:
            time.sleep(next_call - now)
        c0, t0 = time.process_time(), time.perf_counter()
        clf.predict_logits([TEXTS[text]])
        latencies.append((time.perf_counter() - t0) * 1000)
        inside += time.process_time() - c0
        next_call += period
    cpu_total = time.process_time() - cpu_start
    n = len(latencies)
    return {
        "requests": n,
        "p50_ms": float(np.median(latencies)),
        "cpu_ms_inside_call": inside / n * 1000,
        "cpu_ms_per_request": cpu_total / n * 1000,
        "overhead_ratio": cpu_total / inside if inside else float("nan"),
    }
