"""`edgebert serve` measured against in-process calls, on this machine (results name the CPU).

- ready: spawn -> first 200 from /ready (warm disk cache), 5 starts (alternating with --baseline's, if given)
- overhead: p50 of one short text (about 16 tokens) over HTTP (keep-alive) vs in-process, interleaved rounds
- concurrency: 16 client threads sending single-text requests vs the same texts one by one in-process;
  throughput ratio and p50/p99 latency (micro-batching at work)
- idle: CPU per request at 5 requests/s with worker-thread spinning between calls on and off (bench/idle.py)

  python benchmarks/serve.py --artifact runs/bbc/int8 --data bbc_news:dev --out benchmarks/results/serve-epyc-avx2
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgebert import Classifier
from edgebert.bench.idle import IdleConfig, format_idle, measure_idle
from edgebert.bench.run import fingerprint
from edgebert.core.timing import measure_interleaved, median_ms
from edgebert.data.load import load_dataset

SHORT = "Shares rose after record sales in Europe and Asia this quarter."  # 1x16 with [CLS]/[SEP]


class Served:
    def __init__(self, artifact: str, *flags: str, source: Path | None = None) -> None:
        """source: run the server from another checkout of edgebert (an A/B against an older version)."""
        self.port_file = Path(tempfile.mkdtemp()) / "port"
        env = {**os.environ, "PYTHONPATH": str(source)} if source else None
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgebert.cli",
                "serve",
                artifact,
                "--port",
                "0",
                "--port-file",
                str(self.port_file),
                *flags,
            ],
            stderr=subprocess.DEVNULL,
            env=env,
        )
        while not self.port_file.exists():
            time.sleep(0.002)
        self.port = int(self.port_file.read_text())
        while True:
            try:
                if self.get("/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.002)
        self.ready_s = time.perf_counter() - self.started

    def connection(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.connect()  # http.client sends headers and body in two writes: without NODELAY, Nagle adds ~40 ms
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def get(self, path: str) -> tuple[int, bytes]:
        c = self.connection()
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def classify(conn: http.client.HTTPConnection, texts: list[str]) -> dict:
    conn.request(
        "POST", "/v1/classify", body=json.dumps({"inputs": texts}), headers={"Content-Type": "application/json"}
    )
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(body)
    return json.loads(body)


def ready_times(artifact: str, n: int = 5, baseline: Path | None = None) -> dict[str, list[float]]:
    """Seconds from spawn to the first 200 from /ready; with a baseline checkout, its starts alternate with ours."""
    sources = {"this": None, **({"baseline": baseline} if baseline else {})}
    times: dict[str, list[float]] = {name: [] for name in sources}
    for i in range(n):
        for name in list(sources)[:: 1 if i % 2 == 0 else -1]:
            s = Served(artifact, source=sources[name])
            times[name].append(s.ready_s)
            s.stop()
    return times


def overhead(
    artifact: str, threads: int, rounds: int = 5, seconds_per_round: float = 0.5, baseline: Path | None = None
) -> dict:
    clf = Classifier.load(artifact, threads=threads)
    # default flags, as users start it; with a baseline checkout, its server too, measured in the same rounds
    servers = {"this": Served(artifact, "--threads", str(threads))}
    if baseline:
        servers["baseline"] = Served(artifact, "--threads", str(threads), source=baseline)
    conns = {name: server.connection() for name, server in servers.items()}
    calls = {"local": lambda: clf.predict_logits([SHORT])}
    calls |= {name: (lambda c=conn: classify(c, [SHORT])) for name, conn in conns.items()}
    samples = measure_interleaved(calls, rounds=rounds, seconds_per_round=seconds_per_round, warmup=20)
    for server in servers.values():
        server.stop()
    p50 = {name: median_ms(times) for name, times in samples.items()}
    result = {
        "tokens": len(clf.encoder.encode([SHORT])[0][0]),
        "in_process_p50_ms": p50["local"],
        "http_p50_ms": p50["this"],
        "added_ms": p50["this"] - p50["local"],
    }
    if baseline:
        result["baseline_added_ms"] = p50["baseline"] - p50["local"]
    return result


def one_by_one_per_s(artifact: str, texts: list[str], threads: int) -> float:
    """The baseline: the same texts, one call each, in-process (after 10 warm-up calls)."""
    clf = Classifier.load(artifact, threads=threads)
    for t in texts[:10]:
        clf.predict_logits([t])
    start = time.perf_counter()
    for t in texts:
        clf.predict_logits([t])
    return len(texts) / (time.perf_counter() - start)


def concurrency(artifact: str, texts: list[str], threads: int, clients: int = 16) -> dict:
    in_process = one_by_one_per_s(artifact, texts, threads)

    # one copy per core, one thread each: INT8 artifacts run row by row, so parallel copies are what scales
    server = Served(artifact, "--threads", "1", "--replicas", str(threads), "--max-batch", "8", "--max-wait-ms", "2")
    latencies: list[float] = []

    def client(chunk: list[str]) -> None:
        conn = server.connection()
        for text in chunk:
            t = time.perf_counter()
            classify(conn, [text])
            latencies.append((time.perf_counter() - t) * 1000)

    chunks = [texts[i::clients] for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [texts[:2]] * clients))  # warm-up
        latencies.clear()
        start = time.perf_counter()
        list(pool.map(client, chunks))
        served_s = time.perf_counter() - start
    _, metrics = server.get("/metrics")
    server.stop()
    return {
        "requests": len(texts),
        "clients": clients,
        "in_process_one_by_one_per_s": in_process,
        "served_per_s": len(texts) / served_s,
        "ratio": len(texts) / served_s / in_process,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "mean_batch_rows": _mean_batch(metrics.decode()),
    }


def concurrency_wrk(artifact: str, texts: list[str], threads: int, seconds: int = 10, clients: int = 16) -> dict | None:
    """The same comparison with wrk (C, Debian package) as the client, so the load generator takes little of the
    2 cores the server runs on. None when wrk is not installed."""
    import re
    import shutil

    if shutil.which("wrk") is None:
        return None
    in_process = one_by_one_per_s(artifact, texts, threads)
    bodies = ",\n".join(json.dumps(json.dumps({"inputs": [t]})) for t in texts)
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        f"local bodies = {{\n{bodies}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #bodies + 1\n"
        '  return wrk.format("POST", "/v1/classify", {["Content-Type"] = "application/json"}, bodies[i])\nend\n'
    )
    server = Served(artifact, "--threads", "1", "--replicas", str(threads), "--max-batch", "8", "--max-wait-ms", "2")
    url = f"http://127.0.0.1:{server.port}"
    subprocess.run(["wrk", "-t1", f"-c{clients}", "-d2s", "-s", str(script), url], capture_output=True)  # warm-up
    out = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(script), "--latency", url],
        capture_output=True,
        text=True,
    ).stdout
    server.stop()

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    served = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {
        "client": "wrk -t1 -c16",
        "in_process_one_by_one_per_s": in_process,
        "served_per_s": served,
        "ratio": served / in_process,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
    }


def _mean_batch(metrics: str) -> float:
    values = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("edgebert_batch_rows_")
    }
    return values["edgebert_batch_rows_sum"] / values["edgebert_batch_rows_count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--data", default="bbc_news:dev", help="texts for the concurrency run (first sentence of each)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--baseline", type=Path, help="another edgebert checkout: its server's ready time and overhead, interleaved"
    )
    parser.add_argument("--only", choices=("startup",), help="startup: ready time and overhead only")
    args = parser.parse_args()
    texts = [t.split(".")[0][:200] for t in load_dataset(args.data, split="dev", label_column=None).texts]
    texts = (texts * (args.requests // len(texts) + 1))[: args.requests]
    report = {
        "machine": fingerprint(args.threads),
        "artifact": args.artifact,
        "baseline": str(args.baseline) if args.baseline else None,
        "ready_s": ready_times(args.artifact, baseline=args.baseline),
        "overhead_1x16": overhead(args.artifact, args.threads, baseline=args.baseline),
    }
    if args.only is None:
        report["concurrency_16_clients"] = concurrency(args.artifact, texts, args.threads)
        report["concurrency_16_clients_wrk"] = concurrency_wrk(args.artifact, texts, args.threads)
        report["idle_5_per_s"] = measure_idle(
            Path(args.artifact), IdleConfig(rate=5, seconds=4, rounds=3, threads=args.threads)
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine", "idle_5_per_s")}, indent=2))
    if "idle_5_per_s" in report:
        print(format_idle(report["idle_5_per_s"]))


if __name__ == "__main__":
    main()
