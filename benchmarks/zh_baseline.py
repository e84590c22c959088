"""Bag-of-characters logistic regression on zh_reviews: the bar the Chinese BERT must clear.

    python benchmarks/zh_baseline.py [--artifact runs/zh-int8]  ->  benchmarks/results/zh_baseline.json

Features: counts of single characters and character bigrams (TF-IDF), the usual strong linear baseline
for Chinese sentiment; C chosen on dev from a small grid (the BERT run also selects on dev).
With --artifact, the exported model's dev predictions are compared with each baseline's on the same
texts: accuracy difference with a 95% paired-bootstrap interval (is the margin more than noise?).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from edgebert.core.metrics import classification_metrics
from edgebert.data.load import load_dataset

OUT = Path(__file__).parent / "results" / "zh_baseline.json"
BOOTSTRAP = 10_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, help="exported edgebert artifact to compare on zh_reviews:dev")
    args = parser.parse_args()
    train, dev = load_dataset("zh_reviews:train"), load_dataset("zh_reviews:dev")
    labels = sorted(set(train.labels))
    y_train = [labels.index(y) for y in train.labels]
    y_dev = np.asarray([labels.index(y) for y in dev.labels])
    results, predictions = {}, {}
    for ngrams in [(1, 1), (1, 2)]:
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=ngrams, min_df=2, sublinear_tf=True)
        x_train, x_dev = vectorizer.fit_transform(train.texts), vectorizer.transform(dev.texts)
        best = None
        for c in (0.3, 1.0, 3.0, 10.0):
            predicted = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train).predict(x_dev)
            metrics = classification_metrics(y_dev, predicted, labels)
            if best is None or metrics["macro_f1"] > best["macro_f1"]:
                best = {"C": c, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
                predictions[ngrams] = predicted
        name = "chars" if ngrams == (1, 1) else "chars+bigrams"
        results[name] = {**best, "features": x_train.shape[1]}
        print(f"{name:14s} C={best['C']:<5} dev accuracy {best['accuracy']:.4f}  macro-F1 {best['macro_f1']:.4f}")
    if args.artifact:
        from edgebert.runtime import Classifier

        clf = Classifier.load(args.artifact)
        ours = np.asarray([labels.index(p.label) for p in clf.predict(dev.texts)])
        metrics = classification_metrics(y_dev, ours, labels)
        results["artifact"] = {
            "path": str(args.artifact),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
        }
        print(f"{'artifact':14s} {'':7s} dev accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}")
        rng = np.random.default_rng(0)
        samples = rng.integers(0, len(y_dev), size=(BOOTSTRAP, len(y_dev)))
        for ngrams, name in [((1, 1), "chars"), ((1, 2), "chars+bigrams")]:
            # per-text difference in correctness, resampled: the paired bootstrap of the accuracy gap
            diff = (ours == y_dev).astype(float) - (predictions[ngrams] == y_dev).astype(float)
            low, high = np.percentile(diff[samples].mean(1), [2.5, 97.5])
            results["artifact"][f"vs_{name}"] = {"points": 100 * diff.mean(), "ci95": [100 * low, 100 * high]}
            print(f"  vs {name:14s} {100 * diff.mean():+.2f} points (95% CI {100 * low:+.2f} .. {100 * high:+.2f})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"dataset": "zh_reviews (train -> dev)", **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
