"""The same artifact in Python, Node and a real browser on this machine: p50 of one call at 1x16 and 1x128.

    python benchmarks/browser.py --artifact runs/bbc/int8 --out benchmarks/results/browser.json

Python: edgebert's runtime (ONNX Runtime, 1 and 2 threads); Node: examples/node (onnxruntime-node, 1 thread);
browser: examples/web in headless Chromium (onnxruntime-web WASM with SIMD; threads as the page gets them, the page
being cross-origin isolated). Synthetic ids ([CLS] ... [SEP]); model call only, tokenization not included.
Needs `npm ci --ignore-scripts` in examples/node and examples/web, and chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgebert import Classifier
from edgebert.core.cpu import cpu_info

ROOT = Path(__file__).resolve().parents[1]
NODE_TIMER = """
import { EdgebertClassifier } from "./edgebert.mjs";
const [dir, n, reps] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const clf = await EdgebertClassifier.load(dir, { threads: 1 });
const ids = [101, ...Array.from({ length: n - 2 }, (_, i) => 2000 + (i % 5000)), 102];
await clf.classifyIds(ids);
const t = [];
for (let i = 0; i < reps; i++) { const s = performance.now(); await clf.classifyIds(ids); t.push(performance.now() - s); }
t.sort((a, b) => a - b);
console.log(t[Math.floor(t.length / 2)]);
"""


def ids(n: int) -> np.ndarray:
    return np.array([[101, *(2000 + i % 5000 for i in range(n - 2)), 102]], dtype=np.int64)


def python_p50(artifact: Path, threads: int, n: int, reps: int) -> float:
    clf = Classifier.load(artifact, threads=threads)
    feed = (ids(n), np.ones((1, n), np.int64), np.zeros((1, n), np.int64))
    clf.backend.run(*feed)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        clf.backend.run(*feed)
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def node_p50(artifact: Path, n: int, reps: int) -> float:
    out = subprocess.run(
        ["node", "--input-type=module", "-e", NODE_TIMER, str(artifact.resolve()), str(n), str(reps)],
        cwd=ROOT / "examples" / "node",
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def browser_run(artifact: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "web" / "serve.py"), str(artifact), "--port", "0"]
            + ["--port-file", str(port_file)],
            stderr=subprocess.DEVNULL,
        )
        try:
            while not port_file.exists():
                time.sleep(0.05)
            (Path(tmp) / "texts.json").write_text('["Shares fell sharply today."]')
            chromium = shutil.which("chromium") or "/usr/bin/chromium"
            out = subprocess.run(
                ["node", "check.mjs", f"http://127.0.0.1:{int(port_file.read_text())}/", f"{tmp}/texts.json"]
                + [f"{tmp}/page.png", chromium],
                cwd=ROOT / "examples" / "web",
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            server.terminate()
            server.wait()
    page = json.loads(out.stdout)
    return {"browser": f"Chromium {page['browser']}", "threads": page["ready"]["threads"], **page["latency"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fp32", type=Path, help="the same model's fp32 artifact: is INT8 worth it in WASM?")
    args = parser.parse_args()
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_info().record(),
        "artifact": str(args.artifact),
        "python_1_thread": {f"p50_1x{n}_ms": python_p50(args.artifact, 1, n, 50) for n in (16, 128)},
        "python_2_threads": {f"p50_1x{n}_ms": python_p50(args.artifact, 2, n, 50) for n in (16, 128)},
        "node_1_thread": {f"p50_1x{n}_ms": node_p50(args.artifact, n, 50) for n in (16, 128)},
        "browser": browser_run(args.artifact),
    }
    if args.fp32:
        result["browser_fp32_artifact"] = {"artifact": str(args.fp32), **browser_run(args.fp32)}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
