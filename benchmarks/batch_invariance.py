"""Batch invariance of INT8 artifacts, and what it costs.

For each artifact and dataset: how many labels (and how far the logits) differ between one list call batched by
32 and one text per call, with the raw engine (what edgebert did before) and with the runtime as shipped
(row-by-row for artifacts whose INT8 scales are picked per call); then texts/s of both, interleaved rounds.

    python benchmarks/batch_invariance.py --artifact runs/bbc/int8 --data bbc_news:dev \
        --out benchmarks/results/batch_invariance
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edgebert import Classifier
from edgebert.bench.run import fingerprint
from edgebert.core.timing import measure_interleaved
from edgebert.data.load import load_dataset
from edgebert.runtime.backends import RowByRow
from edgebert.runtime.model import batched_logits


def measure(artifact: str, data: str, threads: int, rounds: int) -> dict:
    clf = Classifier.load(artifact, threads=threads, batch_size=32)
    texts = load_dataset(data, split="dev", label_column=None).texts
    ids, types = clf.encoder.encode(texts)
    k = len(clf.labels)
    raw = clf.backend.inner if isinstance(clf.backend, RowByRow) else clf.backend

    def logits(engine, batch_size: int) -> np.ndarray:
        return batched_logits(engine, clf.encoder, ids, types, batch_size, k)

    alone = logits(raw, 1)
    raw_batched = logits(raw, 32)
    shipped_batched = clf.predict_logits(texts)
    shipped_reversed = clf.predict_logits(texts[::-1])[::-1]
    started = time.perf_counter()
    samples = measure_interleaved(
        {"batched_by_32": lambda: logits(raw, 32), "shipped": lambda: clf.predict_logits(texts)},
        rounds=rounds,
        seconds_per_round=0.0,
        warmup=0,
    )
    per_pass = {name: float(np.median([np.median(r) for r in runs])) for name, runs in samples.items()}
    return {
        "artifact": artifact,
        "data": data,
        "texts": len(texts),
        "row_by_row": isinstance(clf.backend, RowByRow),
        "before": {
            "labels_differing_batched_vs_alone": int((raw_batched.argmax(1) != alone.argmax(1)).sum()),
            "max_abs_logit_diff": float(np.abs(raw_batched - alone).max()),
        },
        "shipped": {
            "labels_differing_batched_vs_alone": int((shipped_batched.argmax(1) != alone.argmax(1)).sum()),
            "max_abs_logit_diff": float(np.abs(shipped_batched - alone).max()),
            "max_abs_logit_diff_reversed_order": float(np.abs(shipped_reversed - alone).max()),
        },
        "texts_per_s": {name: len(texts) / (ms / 1000) for name, ms in per_pass.items()},
        "shipped_vs_batched_throughput": per_pass["batched_by_32"] / per_pass["shipped"],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", action="append", required=True)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json (the machine is in it)")
    args = parser.parse_args()
    results = [measure(a, d, args.threads, args.rounds) for a in args.artifact for d in args.data]
    report = {"machine": fingerprint(args.threads), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(
            f"{r['artifact']} on {r['data']} ({report['machine']['isa']}): before {r['before']}, shipped {r['shipped']}, "
            f"texts/s {r['texts_per_s']}, shipped/batched throughput {r['shipped_vs_batched_throughput']:.2f}x"
        )


if __name__ == "__main__":
    main()
