"""What `export --trim-vocab` buys and costs: one checkpoint exported with the full and the trimmed vocabulary.

    python benchmarks/vocab_trim.py --full runs/zh-e5-int8-full --trimmed runs/zh-e5-int8 \
        --data zh_reviews:test --out benchmarks/results/vocab_trim.json

- size of the model files and of tokenizer.json;
- cold start (a fresh process: import, Classifier.load with its checks, the first prediction) and that process's
  peak RSS, 3 fresh processes each, alternating between the two artifacts;
- on held-out texts (--data, a split no selection touched): how many tokenize differently after trimming (the
  token strings, since ids are renumbered), how many labels change, and both accuracies.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgebert.core.artifact import read_manifest
from edgebert.core.cpu import cpu_info
from edgebert.data.load import load_dataset

CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from edgebert import Classifier
model = Classifier.load(sys.argv[1])
model.predict(["质量很好，物流也快，推荐！"])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=Path, required=True)
    parser.add_argument("--trimmed", type=Path, required=True)
    parser.add_argument("--data", default="zh_reviews:test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    artifacts = {"full": args.full, "trimmed": args.trimmed}
    report = {"cpu": cpu_info().record(), "data": args.data, "artifacts": {}}
    for name, path in artifacts.items():
        manifest = read_manifest(path)
        report["artifacts"][name] = {
            "path": str(path),
            "vocabulary": manifest.optimization.vocabulary.kept if manifest.optimization.vocabulary else "full",
            "model_mb": round(sum((path / f).stat().st_size for f in manifest.model_files) / 1e6, 2),
            "tokenizer_mb": round((path / "tokenizer.json").stat().st_size / 1e6, 2),
            "cold_start_s": [],
            "peak_rss_mb": [],
        }
    for _ in range(args.rounds):  # alternate, so drift in the machine's state hits both alike
        for name, path in artifacts.items():
            run = json.loads(
                subprocess.run(
                    [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
                ).stdout
            )
            report["artifacts"][name]["cold_start_s"].append(round(run["seconds"], 3))
            report["artifacts"][name]["peak_rss_mb"].append(round(run["peak_rss_mb"], 1))
    report["held_out"] = held_out_changes(artifacts, load_dataset(args.data))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, entry in report["artifacts"].items():
        print(
            f"{name:8s} model {entry['model_mb']} MB, tokenizer {entry['tokenizer_mb']} MB, cold start "
            f"{np.median(entry['cold_start_s']):.2f} s, peak RSS {np.median(entry['peak_rss_mb']):.0f} MB"
        )
    print(json.dumps(report["held_out"], indent=1))
    return 0


def held_out_changes(artifacts: dict[str, Path], data) -> dict:
    from edgebert.runtime import Classifier

    full, trimmed = (Classifier.load(p) for p in artifacts.values())
    pieces = [[enc.tokens for enc in m.encoder.tokenizer.encode_batch(data.texts)] for m in (full, trimmed)]
    labels = [[p.label for p in m.predict(data.texts)] for m in (full, trimmed)]
    truth = np.asarray(data.labels)
    return {
        "texts": len(data.texts),
        "tokenized_differently": sum(a != b for a, b in zip(*pieces, strict=True)),
        "labels_changed": sum(a != b for a, b in zip(*labels, strict=True)),
        "accuracy_full": float((np.asarray(labels[0]) == truth).mean()),
        "accuracy_trimmed": float((np.asarray(labels[1]) == truth).mean()),
    }


if __name__ == "__main__":
    sys.exit(main())
