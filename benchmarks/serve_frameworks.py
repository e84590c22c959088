"""Would Starlette and prometheus-client keep `edgebert serve`'s start-up within 10%? (issue 33)

Starts the server from spawn to the first 200 from /ready, alternating two ways, `--starts` times each:
- as shipped (edgebert's own ASGI plumbing, serve/asgi.py, and its text /metrics, serve/metrics.py);
- the same, with Starlette's application, routing, CORS and TrustedHost middleware imported first, with
  prometheus-client (and its process collector) imported first, and with both: the least that building the app on
  them would add.
The libraries come from --libraries (a directory `pip install --target` filled), so edgebert's own install is not
changed. Results name the CPU.

  pip install --target /tmp/sl starlette prometheus-client
  python benchmarks/serve_frameworks.py --artifact runs/bbc/int8 --libraries /tmp/sl \
      --out benchmarks/results/serve_frameworks-zen4.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgebert.bench.run import fingerprint

STARLETTE = (
    "import starlette.applications, starlette.routing, starlette.middleware.cors, starlette.middleware.trustedhost, "
    "starlette.responses"
)
PROMETHEUS = "import prometheus_client, prometheus_client.process_collector"
WAYS = {  # name -> what is imported before the server starts
    "as shipped": "",
    "starlette imported": STARLETTE,
    "prometheus-client imported": PROMETHEUS,
    "both imported": f"{STARLETTE}\n{PROMETHEUS}",
}


def ready_ms(artifact: str, preimport: str, env: dict) -> float:
    """Spawn -> first 200 from /ready, in ms."""
    port_file = Path(tempfile.mkdtemp()) / "port"
    code = f"{preimport}\nfrom edgebert.cli import main\nraise SystemExit(main())"
    args = [sys.executable, "-c", code, "serve", artifact, "--port", "0", "--port-file", str(port_file)]
    started = time.perf_counter()
    process = subprocess.Popen(args, stderr=subprocess.DEVNULL, env=env)
    try:
        while not port_file.exists():
            if process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}: {' '.join(args[:2])} …")
            time.sleep(0.002)
        port = int(port_file.read_text())
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/ready")
                if connection.getresponse().status == 200:
                    return (time.perf_counter() - started) * 1000
            except OSError:
                pass
            time.sleep(0.002)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--libraries", required=True, type=Path, help="a `pip install --target` directory")
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    plain_env = dict(os.environ)
    framework_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(args.libraries), os.environ.get("PYTHONPATH", "")]),
    }
    ready_ms(args.artifact, "", plain_env)  # a warm disk cache for every way
    times: dict[str, list[float]] = {name: [] for name in WAYS}
    for _ in range(args.starts):
        for name, preimport in WAYS.items():  # interleaved, so machine noise hits every way alike
            times[name].append(ready_ms(args.artifact, preimport, framework_env if preimport else plain_env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {name: value / medians["as shipped"] for name, value in medians.items()}
    result = {
        "machine": fingerprint(1),
        "artifact": args.artifact,
        "starts": args.starts,
        "ready_ms": times,
        "median_ready_ms": medians,
        "ratio_to_shipped": ratios,
        "within_10_percent": {name: ratio <= 1.10 for name, ratio in ratios.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, value in medians.items():
        print(f"{name}: {value:.0f} ms to ready (median of {args.starts}), {ratios[name]:.3f}x")


if __name__ == "__main__":
    main()
