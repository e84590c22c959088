"""Bag-of-characters logistic regression on zh_reviews: the bar the Chinese BERT must clear.

    python benchmarks/zh_baseline.py [--data zh_reviews] [--artifact NAME=DIR ...] [--out FILE.json]

--data zh_reviews_hotel is the cross-domain check: fit and select without hotel reviews, report on all of them
(edgebert/data/bundled.py DOMAIN_RULE); score artifacts trained on zh_reviews_hotel:train there, never ones that saw
zh_reviews:train (its hotel texts are in that test set).

Features: counts of single characters and character bigrams (TF-IDF), the usual strong linear baseline for
Chinese sentiment. Fit on train, C chosen on dev (the BERT run also selects on dev), reported on test: the
split carved from the published train split that no training or selection touched (edgebert/data/splits).
Each --artifact is scored on the same test texts: accuracy with a 95% bootstrap interval, and its difference
from each baseline with a 95% paired-bootstrap interval (is the margin more than noise?).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from edgebert.core.cpu import cpu_info
from edgebert.core.metrics import (
    accuracy_interval,
    bootstrap_rows,
    classification_metrics,
    paired_accuracy_difference,
)
from edgebert.data.load import load_dataset

OUT = Path(__file__).parent / "results" / "zh_reviews.json"
BASELINES = {"chars": (1, 1), "chars+bigrams": (1, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", action="append", default=[], help="NAME=DIR: an artifact to score on test")
    parser.add_argument("--data", default="zh_reviews", choices=["zh_reviews", "zh_reviews_hotel"])
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/DATA.json")
    args = parser.parse_args()
    out = args.out or OUT.with_name(f"{args.data}.json")
    train, dev, test = (load_dataset(f"{args.data}:{split}") for split in ("train", "dev", "test"))
    labels = sorted(set(train.labels))
    y_test = np.asarray([labels.index(y) for y in test.labels])
    samples = bootstrap_rows(len(y_test))
    results = {
        "dataset": f"{args.data}: fit on train ({len(train)}), select on dev ({len(dev)}), report on test ({len(test)})",
        "resolution": f"one test text = {100 / len(test):.3f} points",
        "cpu": cpu_info().record(),
        "baselines": {},
        "artifacts": {},
    }
    correct = {}
    for name, ngrams in BASELINES.items():
        best, predicted = baseline(train, dev, test, labels, ngrams)
        correct[name] = predicted == y_test
        results["baselines"][name] = {**best, **accuracy_interval(correct[name], samples)}
        print(f"{name:14s} C={best['C']:<5} test accuracy {show(results['baselines'][name])}")
    for spec in args.artifact:
        name, _, path = spec.partition("=")
        entry, correct[name] = score_artifact(Path(path), test, labels, y_test, samples)
        for base in BASELINES:
            entry[f"vs_{base}"] = paired_accuracy_difference(correct[name], correct[base], samples)
        results["artifacts"][name] = entry
        print(f"{name:14s} {'':7s} test accuracy {show(entry)}")
        for base in BASELINES:
            gap = entry[f"vs_{base}"]
            print(
                f"  vs {base:14s} {gap['points']:+.2f} points (95% CI {gap['ci95'][0]:+.2f} .. {gap['ci95'][1]:+.2f})"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def baseline(train, dev, test, labels, ngrams) -> tuple[dict, np.ndarray]:
    """TF-IDF character n-grams + logistic regression; C by dev macro-F1; test predictions of that C."""
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=ngrams, min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train.texts)
    y_train = [labels.index(y) for y in train.labels]
    y_dev = [labels.index(y) for y in dev.labels]
    best, chosen = None, None
    for c in (0.3, 1.0, 3.0, 10.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
        dev_metrics = classification_metrics(np.asarray(y_dev), model.predict(vectorizer.transform(dev.texts)), labels)
        if best is None or dev_metrics["macro_f1"] > best["dev_macro_f1"]:
            best = {"C": c, "dev_accuracy": dev_metrics["accuracy"], "dev_macro_f1": dev_metrics["macro_f1"]}
            chosen = model
    best["features"] = x_train.shape[1]
    return best, chosen.predict(vectorizer.transform(test.texts))


def score_artifact(path: Path, test, labels, y_test, samples) -> tuple[dict, np.ndarray]:
    from edgebert.core.artifact import read_manifest
    from edgebert.runtime import Classifier

    start = time.perf_counter()
    model = Classifier.load(path)
    predicted = np.asarray([labels.index(p.label) for p in model.predict(test.texts)])
    seconds = time.perf_counter() - start
    manifest = read_manifest(path)
    correct = predicted == y_test
    metrics = classification_metrics(y_test, predicted, labels)
    entry = {
        "path": str(path),
        "precision": manifest.precision,
        "pretrained": (manifest.source.pretrained or {}).get("name", manifest.source.base_model),
        "vocabulary": model.encoder.tokenizer.get_vocab_size(with_added_tokens=True),  # trimmed at train or export
        "model_mb": round(sum((path / f).stat().st_size for f in manifest.model_files) / 1e6, 1),
        "macro_f1": metrics["macro_f1"],
        "seconds_for_test": round(seconds, 1),
        **accuracy_interval(correct, samples),
    }
    return entry, correct


def show(entry: dict) -> str:
    return f"{entry['accuracy']:.4f} (95% CI {entry['ci95'][0]:.4f} .. {entry['ci95'][1]:.4f})"


if __name__ == "__main__":
    sys.exit(main())
