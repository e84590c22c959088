"""Artifacts scored side by side on a dataset's test split (selected on dev, never on this), with intervals.

    python benchmarks/held_out.py --data bbc_news:test --artifact minilm=runs/bbc-minilm-int8 \
        --artifact e5=runs/bbc-e5-int8 --out benchmarks/results/bbc_news_encoders.json

Per artifact: accuracy and macro-F1 with a 95% bootstrap interval, its dev score at training, size, vocabulary,
and the mean per-text time on these texts (one process, interleaved rounds). Every artifact after the first is also
compared with the first: accuracy difference in points with a 95% paired-bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edgebert.core.artifact import read_manifest
from edgebert.core.cpu import cpu_info
from edgebert.core.metrics import accuracy_interval, bootstrap_rows, classification_metrics, paired_accuracy_difference
from edgebert.core.timing import measure_interleaved, median_ms
from edgebert.data.load import load_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a test split, e.g. bbc_news:test")
    parser.add_argument("--artifact", action="append", required=True, help="NAME=DIR; the first is the reference")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--long-text", choices=["truncate", "chunk"], help="read every artifact so (default: each its manifest's)"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from edgebert.runtime import Classifier

    data = load_dataset(args.data, split="test")
    named = dict(spec.partition("=")[::2] for spec in args.artifact)
    models = {name: Classifier.load(path, threads=args.threads) for name, path in named.items()}
    labels = sorted(set(data.labels))
    truth = np.asarray([labels.index(y) for y in data.labels])
    rows = bootstrap_rows(len(truth))
    report = {
        "data": f"{data.source} ({len(data)} texts; one text = {100 / len(data):.2f} points)",
        "cpu": cpu_info().record(),
        "threads": args.threads,
        "long_text": args.long_text or "each artifact's own policy",
        "artifacts": {},
    }
    correct = {}
    for name, model in models.items():
        answers = model.predict(data.texts, long_text=args.long_text)
        predicted = np.asarray([labels.index(p.label) for p in answers])
        correct[name] = predicted == truth
        manifest = read_manifest(Path(named[name]))
        trim = manifest.optimization.vocabulary
        report["artifacts"][name] = {
            "path": named[name],
            "pretrained": (manifest.source.pretrained or {}).get("name", manifest.source.base_model),
            "precision": manifest.precision,
            "train_dev_metrics": manifest.source.train_dev_metrics,
            "vocabulary": trim.kept if trim else "full",
            "model_mb": round(sum((Path(named[name]) / f).stat().st_size for f in manifest.model_files) / 1e6, 1),
            "macro_f1": classification_metrics(truth, predicted, labels)["macro_f1"],
            **accuracy_interval(correct[name], rows),
        }
    reference = next(iter(models))
    for name in list(models)[1:]:
        report["artifacts"][name][f"vs_{reference}"] = paired_accuracy_difference(
            correct[name], correct[reference], rows
        )
    texts = data.texts[:64]
    runs = {name: (lambda m=model: m.predict(texts, long_text=args.long_text)) for name, model in models.items()}
    samples = measure_interleaved(runs, rounds=3, seconds_per_round=2.0, warmup=1)
    for name in models:
        report["artifacts"][name]["ms_per_text"] = round(median_ms(samples[name]) / len(texts), 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, entry in report["artifacts"].items():
        gap = entry.get(f"vs_{reference}")
        versus = f"; vs {reference} {gap['points']:+.2f} [{gap['ci95'][0]:+.2f}, {gap['ci95'][1]:+.2f}]" if gap else ""
        print(
            f"{name:10s} accuracy {entry['accuracy']:.4f} [{entry['ci95'][0]:.4f}, {entry['ci95'][1]:.4f}]"
            f"{versus}; {entry['model_mb']} MB; {entry['ms_per_text']} ms/text"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
