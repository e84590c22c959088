"""Multi-label on real data: MSRA sentences labelled with the entity types they mention (msra_entity_types).

    python benchmarks/multi_label.py --artifact runs/ml-int8 --train msra_entity_types:train:8000 \\
        --out benchmarks/results/multi_label_msra.json

The artifact (exported with --eval msra_entity_types:dev) is scored on msra_entity_types:test, which no training
or selection touched, with the thresholds its manifest carries (chosen on dev); beside it, a one-vs-rest
logistic regression on TF-IDF character n-grams fit on the same training sentences, its C and thresholds chosen
on dev. Reported: micro/macro F1 and exact match with 95% bootstrap intervals, the paired difference in micro F1,
per-label scores and thresholds, and the INT8 drift per label against the fp32 graph (from the manifest).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from edgebert import Classifier
from edgebert.core.cpu import cpu_info
from edgebert.core.metrics import (
    best_thresholds,
    bootstrap_rows,
    f1_interval,
    label_counts,
    multilabel_metrics,
    paired_f1_difference,
)
from edgebert.data.load import load_dataset


def multi_hot(label_sets, labels: list[str]) -> np.ndarray:
    return np.asarray([[name in row for name in labels] for row in label_sets], dtype=bool)


def baseline(train, dev, test, labels: list[str]) -> tuple[np.ndarray, dict]:
    """One-vs-rest logistic regression on TF-IDF characters and bigrams; C and per-label thresholds from dev."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train, x_dev, x_test = vectorizer.fit_transform(train.texts), vectorizer.transform(dev.texts), None
    y_train, y_dev = multi_hot(train.labels, labels), multi_hot(dev.labels, labels)
    best = None
    for c in (0.3, 1.0, 3.0, 10.0):
        model = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)).fit(x_train, y_train)
        scores = model.predict_proba(x_dev)
        thresholds = best_thresholds(y_dev, scores)
        f1 = multilabel_metrics(y_dev, scores >= thresholds, labels)["micro_f1"]
        if best is None or f1 > best[0]:
            best = (f1, c, thresholds, model)
    _, c, thresholds, model = best
    x_test = vectorizer.transform(test.texts)
    return model.predict_proba(x_test) >= thresholds, {"C": c, "thresholds": thresholds, "features": x_train.shape[1]}


def int8_drift(evaluation) -> dict | None:
    """What the export measured of INT8 against the fp32 graph on one split (None: not evaluated there)."""
    if evaluation is None:
        return None
    return {
        "micro_f1_drop_points": evaluation.drop_points,
        "drop_ci95": evaluation.drop_ci95,
        "per_label_changes": evaluation.metrics.get("per_label_changes"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, required=True)
    parser.add_argument("--train", default="msra_entity_types:train")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    train, dev, test = (load_dataset(s) for s in (args.train, "msra_entity_types:dev", "msra_entity_types:test"))
    clf = Classifier.load(args.artifact)
    labels = list(clf.labels)
    truth = multi_hot(test.labels, labels)
    started = time.perf_counter()
    ours = multi_hot([p.labels for p in clf.predict(test.texts)], labels)
    seconds = time.perf_counter() - started
    theirs, fitted = baseline(train, dev, test, labels)
    rows = bootstrap_rows(len(truth))
    manifest = clf.manifest

    def report(predicted: np.ndarray) -> dict:
        metrics = multilabel_metrics(truth, predicted, labels)
        return {**metrics, "micro_f1_ci95": f1_interval(label_counts(truth, predicted), rows)}

    result = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpu": cpu_info().record(),
        "data": f"msra_entity_types: fit on {train.source} ({len(train)}), select on dev ({len(dev)}), "
        f"report on test ({len(test)})",
        "label_distribution_test": {name: int(truth[:, k].sum()) for k, name in enumerate(labels)},
        "artifact": {
            "path": str(args.artifact),
            "pretrained": (manifest.source.pretrained or {}).get("name", manifest.source.base_model),
            "precision": manifest.precision,
            "thresholds": dict(zip(labels, manifest.thresholds, strict=True)),
            "test": report(ours),
            "ms_per_text": round(1000 * seconds / len(test), 2),
            "int8_drift_dev": int8_drift(manifest.evaluation),
            "int8_drift_test": int8_drift(manifest.test_evaluation),
        },
        "baseline": {"name": "TF-IDF chars+bigrams, one-vs-rest logistic regression", **fitted, "test": report(theirs)},
        "artifact_minus_baseline_micro_f1": paired_f1_difference(
            label_counts(truth, ours), label_counts(truth, theirs), rows
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    a, b = result["artifact"]["test"], result["baseline"]["test"]
    print(f"test micro F1: edgebert {a['micro_f1']:.4f} {a['micro_f1_ci95']}, baseline {b['micro_f1']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
