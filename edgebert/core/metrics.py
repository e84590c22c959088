"""Classification and entity metrics and quantization drift, from plain arrays. Torch-free (bench uses it on device)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .bio import bio_entities


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix (rows = true)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = actual > 0  # macro averages over classes that occur in y_true
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": confusion.tolist(),
    }


def drift(
    reference_logits: np.ndarray, candidate_logits: np.ndarray, y_true: Sequence[int] | None, labels: Sequence[str]
) -> dict[str, Any]:
    """What a variant (e.g. INT8) changed against a reference (e.g. fp32) on the same inputs."""
    ref_pred, cand_pred = reference_logits.argmax(-1), candidate_logits.argmax(-1)
    delta = np.abs(reference_logits - candidate_logits)
    flips = np.nonzero(ref_pred != cand_pred)[0]
    result: dict[str, Any] = {
        "n": int(len(ref_pred)),
        "agreement": float((ref_pred == cand_pred).mean()) if len(ref_pred) else 1.0,
        "flips": int(len(flips)),
        "flipped_indices": flips.tolist(),
        "max_abs_logit_diff": float(delta.max()) if delta.size else 0.0,
        "mean_abs_logit_diff": float(delta.mean()) if delta.size else 0.0,
    }
    if y_true is not None:
        ref = classification_metrics(y_true, ref_pred, labels)
        cand = classification_metrics(y_true, cand_pred, labels)
        result.update(
            reference_accuracy=ref["accuracy"],
            candidate_accuracy=cand["accuracy"],
            accuracy_drop_points=100 * (ref["accuracy"] - cand["accuracy"]),
            reference_macro_f1=ref["macro_f1"],
            candidate_macro_f1=cand["macro_f1"],
            macro_f1_drop_points=100 * (ref["macro_f1"] - cand["macro_f1"]),
        )
    return result


def entity_metrics(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level micro precision/recall/F1 (exact span and type match) plus per-type scores."""
    per_type: dict[str, list[int]] = {}  # type -> [true positives, predicted, actual]
    tag_hits = tag_total = 0
    for truth, pred in zip(true_tags, pred_tags, strict=True):
        gold = {(k, s, e) for k, s, e in bio_entities(truth)}
        found = {(k, s, e) for k, s, e in bio_entities(pred)}
        for kind, *_ in gold:
            per_type.setdefault(kind, [0, 0, 0])[2] += 1
        for entity in found:
            counts = per_type.setdefault(entity[0], [0, 0, 0])
            counts[1] += 1
            counts[0] += entity in gold
        tag_hits += sum(t == p for t, p in zip(truth, pred, strict=True))
        tag_total += len(truth)
    tp, predicted, actual = (sum(c[i] for c in per_type.values()) for i in range(3))
    result = _prf(tp, predicted, actual)
    return {
        **result,
        "tag_accuracy": tag_hits / tag_total if tag_total else 0.0,
        "sentences": len(true_tags),
        "per_type": {kind: _prf(*counts) for kind, counts in sorted(per_type.items())},
    }


def _prf(tp: int, predicted: int, actual: int) -> dict[str, float]:
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def entity_drift(reference_tags: Sequence[Sequence[str]], candidate_tags: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entities gained, lost and changed by a candidate (INT8) against a reference (fp32), sentence by sentence.

    Per sentence, entities in both are unchanged; a candidate entity that overlaps a reference one it does not equal
    is "changed" (span or type); the rest are "gained" (candidate only) or "lost" (reference only)."""
    gained = lost = changed = 0
    indices: list[int] = []
    for i, (ref, cand) in enumerate(zip(reference_tags, candidate_tags, strict=True)):
        before, after = set(bio_entities(ref)), set(bio_entities(cand))
        if before == after:
            continue
        indices.append(i)
        only_before, only_after = before - after, after - before

        def overlaps(entity, others) -> bool:
            return any(entity[1] < other[2] and other[1] < entity[2] for other in others)

        pairs = {e for e in only_after if overlaps(e, only_before)}
        changed += len(pairs)
        gained += len(only_after) - len(pairs)
        lost += sum(1 for e in only_before if not overlaps(e, only_after))
    return {
        "sentences_changed": len(indices),
        "gained": gained,
        "lost": lost,
        "changed": changed,
        "changed_sentence_indices": indices[:100],
    }


# ---- intervals: resample the evaluated rows (texts or sentences) with replacement, 95% percentile interval
BOOTSTRAP_SAMPLES = 10_000


def bootstrap_rows(n_rows: int, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> np.ndarray:
    """(samples, n_rows) row indices, shared by every interval on the same rows so comparisons are paired."""
    return np.random.default_rng(seed).integers(0, n_rows, size=(samples, n_rows))


def accuracy_interval(correct: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """Accuracy of a (N,) bool vector with its 95% bootstrap interval."""
    low, high = np.percentile(correct[rows].mean(1), [2.5, 97.5])
    return {"accuracy": float(correct.mean()), "ci95": [float(low), float(high)]}


def changed_share_bound(changed: int, n: int, z: float = 1.96) -> list[float]:
    """[-u, +u] in points: the accuracy change on texts like these lies within the share of labels that changed,
    and u is the upper end of that share's 95% Wilson interval. Needs no labels, so a large unlabelled pool can
    resolve a fraction of a point (0 of 12,000 changed: u = 0.03 points)."""
    if n <= 0:
        raise ValueError("the agreement pool is empty")
    share = changed / n
    centre = share + z * z / (2 * n)
    spread = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    upper = min(1.0, float((centre + spread) / (1 + z * z / n)))
    return [-100 * upper, 100 * upper]


def paired_accuracy_difference(ours: np.ndarray, theirs: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """Accuracy(ours) - accuracy(theirs) in points, with a 95% paired-bootstrap interval: per-row differences in
    correctness resampled together, so what both get right or wrong cancels."""
    diff = ours.astype(float) - theirs.astype(float)
    low, high = np.percentile(diff[rows].mean(1), [2.5, 97.5])
    return {"points": 100 * float(diff.mean()), "ci95": [100 * float(low), 100 * float(high)]}


def entity_counts(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> np.ndarray:
    """(sentences, 3) int array: per sentence, entities found correctly, found, and in the gold tags."""
    counts = np.zeros((len(true_tags), 3), dtype=np.int64)
    for i, (truth, pred) in enumerate(zip(true_tags, pred_tags, strict=True)):
        gold, found = set(bio_entities(truth)), set(bio_entities(pred))
        counts[i] = len(gold & found), len(found), len(gold)
    return counts


def _f1_of_sums(sums: np.ndarray) -> np.ndarray:
    """Micro F1 from (..., 3) summed [correct, found, gold] counts: 2·correct / (found + gold)."""
    denominator = sums[..., 1] + sums[..., 2]
    return np.where(denominator > 0, 2 * sums[..., 0] / np.maximum(denominator, 1), 0.0)


def paired_f1_difference(ours: np.ndarray, theirs: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """Entity F1(ours) - F1(theirs) in points, with a 95% paired-bootstrap interval over sentences.

    ours, theirs: entity_counts of the same sentences; rows: bootstrap_rows over those sentences."""
    point = _f1_of_sums(ours.sum(0)) - _f1_of_sums(theirs.sum(0))
    resampled = _f1_of_sums(ours[rows].sum(1)) - _f1_of_sums(theirs[rows].sum(1))  # (samples,)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"points": 100 * float(point), "ci95": [100 * float(low), 100 * float(high)]}


def f1_interval(counts: np.ndarray, rows: np.ndarray) -> list[float]:
    """95% bootstrap interval of micro entity F1 over sentences (counts: entity_counts)."""
    low, high = np.percentile(_f1_of_sums(counts[rows].sum(1)), [2.5, 97.5])
    return [float(low), float(high)]


def multilabel_metrics(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Micro and macro precision/recall/F1, exact-match accuracy and per-label scores of (N, K) 0/1 matrices."""
    truth, predicted = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    tp, found, gold = (truth & predicted).sum(0), predicted.sum(0), truth.sum(0)  # (K,) each
    per_label = {name: _prf(int(tp[k]), int(found[k]), int(gold[k])) for k, name in enumerate(labels)}
    micro = _prf(int(tp.sum()), int(found.sum()), int(gold.sum()))
    return {
        "micro_precision": micro["precision"],
        "micro_recall": micro["recall"],
        "micro_f1": micro["f1"],
        "macro_f1": float(np.mean([p["f1"] for p in per_label.values()])),
        "exact_match": float(np.mean((truth == predicted).all(1))) if len(truth) else 0.0,
        "texts": int(len(truth)),
        "per_label": per_label,
    }


def label_counts(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(N, 3) per text: labels given correctly, given, and true; the counts micro F1 and its intervals sum."""
    truth, predicted = np.asarray(truth, dtype=bool), np.asarray(predicted, dtype=bool)
    return np.stack([(truth & predicted).sum(1), predicted.sum(1), truth.sum(1)], axis=1).astype(np.int64)


def best_thresholds(truth: np.ndarray, scores: np.ndarray, grid: Sequence[float] | None = None) -> list[float]:
    """Per label, the score threshold on `grid` that maximises that label's F1 (ties: the one nearest 0.5)."""
    truth = np.asarray(truth, dtype=bool)
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2) if grid is None else np.asarray(grid)
    chosen = []
    for k in range(truth.shape[1]):
        f1 = []
        for t in grid:
            given = scores[:, k] >= t
            hits = int((given & truth[:, k]).sum())
            f1.append(_prf(hits, int(given.sum()), int(truth[:, k].sum()))["f1"])
        best = max(f1)
        chosen.append(float(min((t for t, f in zip(grid, f1, strict=True) if f == best), key=lambda t: abs(t - 0.5))))
    return chosen
