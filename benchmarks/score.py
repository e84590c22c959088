"""`edgebert score` throughput: in-process predict, --workers 1, --workers 2 (1 thread each), and --ray on a local
instance, on bbc_news and zh_reviews texts. Results name the CPU.

    python benchmarks/score.py --artifact runs/bbc/int8 --out benchmarks/results/score-epyc-avx2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgebert import Classifier
from edgebert.bench.run import fingerprint
from edgebert.data.load import load_dataset


def corpus(name: str, rows: int, folder: Path, stem: str = "corpus") -> tuple[Path, list[str]]:
    texts = load_dataset(f"{name}:train", label_column=None).texts
    texts = (texts * (rows // len(texts) + 1))[:rows]
    path = folder / f"{name}-{stem}.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))
    return path, texts


def run_score(artifact: str, source: Path, out: Path, *flags: str) -> float:
    started = time.perf_counter()
    cmd = [sys.executable, "-m", "edgebert.cli", "score", artifact, "--input", str(source), "--output", str(out)]
    subprocess.run([*cmd, "--quiet", "--force", *flags], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--data", action="append", help="bundled datasets (default: bbc_news and zh_reviews)")
    parser.add_argument("--small-rows", type=int, default=20, help="a run this small measures start-up alone")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    results = {}
    for name in args.data or ("bbc_news", "zh_reviews"):
        source, texts = corpus(name, args.rows, folder)
        clf = Classifier.load(args.artifact, threads=2)
        clf.predict(texts[:20])
        started = time.perf_counter()
        clf.predict(texts)
        in_process = time.perf_counter() - started
        modes = {"workers_1": ("--workers", "1"), "workers_2": ("--workers", "2"), "ray_local_2_cpus": ("--ray",)}
        small_source, _ = corpus(name, args.small_rows, folder, stem="small")
        seconds = {"in_process_predict_2_threads": in_process}
        startup = {}
        for mode, flags in modes.items():
            seconds[mode] = run_score(args.artifact, source, folder / f"{mode}.jsonl", *flags)
            startup[mode] = run_score(args.artifact, small_source, folder / f"{mode}-small.jsonl", *flags)
        # Start-up (interpreter, workers or Ray, artifact load) is what a tiny run costs; what is left of the big
        # run is the per-row cost, which is what a corpus large enough to matter sees.
        marginal = {m: (len(texts) - args.small_rows) / (seconds[m] - startup[m]) for m in modes}
        outputs = [(folder / f"{mode}.jsonl").read_bytes() for mode in modes]
        results[name] = {
            "rows": len(texts),
            "rows_per_s": {k: len(texts) / v for k, v in seconds.items()},
            "startup_s": startup,
            "marginal_rows_per_s": marginal,
            "scaling_workers_2_vs_1": seconds["workers_1"] / seconds["workers_2"],
            "marginal_scaling_workers_2_vs_1": marginal["workers_2"] / marginal["workers_1"],
            "ray_overhead_vs_workers_2": seconds["ray_local_2_cpus"] / seconds["workers_2"],
            "ray_marginal_rate_vs_workers_2": marginal["ray_local_2_cpus"] / marginal["workers_2"],
            "outputs_identical": all(o == outputs[0] for o in outputs),
            "note": "wall time of the whole command: interpreter and worker start-up, reading, scoring, writing; "
            f"startup_s is a {args.small_rows}-row run of the same command",
        }
        print(name, json.dumps(results[name], indent=1))
    report = {"machine": fingerprint(2), "artifact": args.artifact, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
