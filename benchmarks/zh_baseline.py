"""Bag-of-characters logistic regression on zh_reviews: the bar the Chinese BERT must clear.

    python benchmarks/zh_baseline.py   ->  benchmarks/results/zh_baseline.json

Features: counts of single characters and character bigrams (TF-IDF), the usual strong linear baseline
for Chinese sentiment; C chosen on dev from a small grid (the BERT run also selects on dev).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from edgebert.data import load_dataset
from edgebert.metrics import classification_metrics

OUT = Path(__file__).parent / "results" / "zh_baseline.json"


def main() -> int:
    train, dev = load_dataset("zh_reviews:train"), load_dataset("zh_reviews:dev")
    labels = sorted(set(train.labels))
    y_train = [labels.index(y) for y in train.labels]
    y_dev = [labels.index(y) for y in dev.labels]
    results = {}
    for ngrams in [(1, 1), (1, 2)]:
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=ngrams, min_df=2, sublinear_tf=True)
        x_train, x_dev = vectorizer.fit_transform(train.texts), vectorizer.transform(dev.texts)
        best = None
        for c in (0.3, 1.0, 3.0, 10.0):
            model = LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train)
            metrics = classification_metrics(y_dev, model.predict(x_dev), labels)
            if best is None or metrics["macro_f1"] > best["macro_f1"]:
                best = {"C": c, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
        name = "chars" if ngrams == (1, 1) else "chars+bigrams"
        results[name] = {**best, "features": x_train.shape[1]}
        print(f"{name:14s} C={best['C']:<5} dev accuracy {best['accuracy']:.4f}  macro-F1 {best['macro_f1']:.4f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"dataset": "zh_reviews (train -> dev)", **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
