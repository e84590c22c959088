"""Multi-label classification: any number of labels per text (none included). A sigmoid per label, binary
cross-entropy in training, and per-label decision thresholds chosen on dev (stored in the checkpoint and the
artifact's manifest). Selection metric: micro F1; `--max-drop` is in micro-F1 points.

Rows are texts, as for sequence classification (SequenceTask), whose encoding and logits it reuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.artifact import MULTI_LABEL, LongText
from ..core.errors import InputError
from ..core.measurements import Drift, Evaluation
from ..core.metrics import (
    best_thresholds,
    bootstrap_rows,
    f1_interval,
    label_counts,
    multilabel_metrics,
    paired_f1_difference,
)
from ..data.text import LabelSet, TextDataset
from ..data.tokens import UNLABELLED
from ..runtime.tokenization import Batch, TextEncoder
from .base import EVAL_BOOTSTRAP, Encoded, Task
from .sequence import SequenceTask

DEFAULT_THRESHOLD = 0.5  # before thresholds are chosen on dev, and for imported models that carry none


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


class MultiLabelTask(SequenceTask):
    name = MULTI_LABEL
    kind = "multi-label text classifier"  # as a model card titles it
    score_name = "micro_f1"
    metric = "micro F1"
    hf_problem_type = "multi_label_classification"
    tunable = True  # scored in micro-F1 at the model's thresholds
    changed_labels = Task.changed_labels  # a changed label set does not bound micro F1 the way it bounds accuracy
    headline_keys = ("micro_f1", "macro_f1", "exact_match")
    headline_key = "micro_f1"
    distils_ensembles = False  # the ensemble's targets are softmax distributions

    def __init__(self, labels: LabelSet, thresholds: list[float] | None = None) -> None:
        super().__init__(labels)
        self.thresholds = np.asarray(thresholds or [DEFAULT_THRESHOLD] * len(labels.names))

    @classmethod
    def from_meta(cls, meta) -> MultiLabelTask:
        return cls(LabelSet(tuple(meta.labels)), meta.thresholds)

    @classmethod
    def from_training_data(cls, train_data: TextDataset, label_column: str = "label") -> MultiLabelTask:
        names = sorted({name for row in _label_sets(train_data) for name in row})
        if len(names) < 2:
            raise InputError(
                f"Multi-label training needs at least 2 distinct labels in {train_data.source}, found {names}."
            )
        return cls(LabelSet(tuple(names)))

    def decision_thresholds(self) -> list[float]:
        return [float(t) for t in self.thresholds]

    def targets(self, data: TextDataset) -> list:
        """What each text should be given: a 0/1 row over the labels."""
        return self.multi_hot(_label_sets(data), data.source).tolist()

    def multi_hot(self, label_sets: list[tuple[str, ...]], source: str) -> np.ndarray:
        """(N, K) 0/1 float32 from each text's labels."""
        index = {name: k for k, name in enumerate(self.labels.names)}
        unknown = sorted({name for row in label_sets for name in row} - index.keys())
        if unknown:
            raise InputError(
                f"{source} has labels the model does not know: {unknown[:5]}; its labels are {list(self.labels.names)}."
            )
        out = np.zeros((len(label_sets), len(index)), dtype=np.float32)
        for i, row in enumerate(label_sets):
            out[i, [index[name] for name in row]] = 1.0
        return out

    def class_counts(self, encoded: Encoded) -> np.ndarray:
        targets = np.asarray(encoded.targets)  # (N, K)
        return targets[targets[:, 0] != UNLABELLED].sum(0).astype(np.int64)  # distill --unlabelled rows count nothing

    def encode_unlabelled(self, encoder: TextEncoder, data: TextDataset, long_text: LongText) -> Encoded:
        rows = super().encode_unlabelled(encoder, data, long_text)
        return Encoded(rows.ids, rows.type_ids, [np.full(self.num_labels, UNLABELLED, np.float32)] * len(rows.ids))

    def batch_targets(self, encoded: Encoded, batch: Batch) -> np.ndarray:
        return np.asarray([encoded.targets[i] for i in batch.indices], dtype=np.float32)  # (B, K)

    def loss(self, torch, logits, targets, class_weights=None):
        """Binary cross-entropy per label; `class_weights` (auto) weighs the positives of rare labels."""
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), pos_weight=class_weights
        )

    def distillation_loss(self, torch, student, teacher, targets, *, temperature, alpha, class_weights=None):
        """Each label's teacher probability sigmoid(teacher / T) is a soft binary target: alpha * T^2 *
        BCE(student / T, it) + (1 - alpha) * the labels' BCE on labelled rows (T^2: the soft term's gradient,
        ~(student - teacher) / 4T^2 for large T, keeps its scale as for softmax). student, teacher: (B, K) logits;
        targets (B, K) multi-hot, an unlabelled row's all UNLABELLED."""
        soft = torch.nn.functional.binary_cross_entropy_with_logits(
            student / temperature, torch.sigmoid(teacher / temperature)
        )
        labelled = targets[:, 0] != UNLABELLED
        hard = student.new_zeros(())
        if labelled.any():
            hard = self.loss(torch, student[labelled], targets[labelled], class_weights)
        return alpha * temperature**2 * soft + (1 - alpha) * hard

    def changed_answers(self, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        return (self.given(reference) != self.given(candidate)).any(-1)

    def answer(self, logits: np.ndarray) -> list[str]:
        return [name for name, given in zip(self.labels.names, self.given(logits), strict=True) if given]

    def given(self, logits: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
        """(N, K) bool: the labels each text is given."""
        return sigmoid(logits) >= (self.thresholds if thresholds is None else thresholds)

    def evaluate(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> dict[str, Any]:
        """Scores with the labels given at the current thresholds (0.5 in training: selection), plus the per-label
        thresholds that would maximise each label's F1 on these texts (what the checkpoint keeps)."""
        logits = self.text_logits(self.logits(backend, encoder, encoded.ids, encoded.type_ids, batch_size), encoded)
        truth = np.asarray(encoded.targets)
        metrics = multilabel_metrics(truth, self.given(logits), self.labels.names)
        return {**metrics, "best_thresholds": best_thresholds(truth, sigmoid(logits))}

    def checkpoint_extras(self, dev_metrics: dict[str, Any]) -> dict[str, Any]:
        """Per-label thresholds that maximise each label's F1 on dev, for the model being saved."""
        return {"thresholds": dev_metrics["best_thresholds"]}

    def budget_score(self, encoded: Encoded) -> Callable[[np.ndarray], float]:
        truth = np.asarray(encoded.targets)
        return lambda logits: multilabel_metrics(truth, self.given(logits), self.labels.names)["micro_f1"]

    def budget_interval(self, encoded: Encoded) -> Callable[[np.ndarray, np.ndarray], list[float]]:
        truth = np.asarray(encoded.targets)
        rows = bootstrap_rows(len(truth), samples=EVAL_BOOTSTRAP)
        return lambda reference, candidate: paired_f1_difference(
            label_counts(truth, self.given(reference)), label_counts(truth, self.given(candidate)), rows
        )["ci95"]

    def artifact_evaluation(
        self, *, source, encoded, candidate, fp32_reference, fp32_graph, encoder, candidate_engine
    ) -> Evaluation:
        candidate_logits = candidate()
        reference_logits = candidate_logits if fp32_reference is None else fp32_reference
        truth = np.asarray(encoded.targets)
        ours, theirs = self.given(candidate_logits), self.given(reference_logits)
        scores = multilabel_metrics(truth, ours, self.labels.names)
        reference = multilabel_metrics(truth, theirs, self.labels.names)
        rows = bootstrap_rows(len(truth), samples=EVAL_BOOTSTRAP)
        changed = (ours != theirs).any(1)
        scores["per_label_changes"] = {  # INT8 drift per label: texts where it was given or taken away
            name: {"given": int((ours[:, k] & ~theirs[:, k]).sum()), "taken": int((theirs[:, k] & ~ours[:, k]).sum())}
            for k, name in enumerate(self.labels.names)
        }
        diff = np.abs(candidate_logits - reference_logits)
        return Evaluation(
            data=source,
            n=len(truth),
            metric="micro_f1",
            score=scores["micro_f1"],
            reference_score=reference["micro_f1"],
            drop_points=100 * (reference["micro_f1"] - scores["micro_f1"]),
            metrics=scores,
            reference_metrics=reference if fp32_reference is not None else None,
            drift=Drift(
                agreement=float(1 - changed.mean()),
                flips=int(changed.sum()),
                flipped_indices=np.flatnonzero(changed)[:100].tolist(),
                max_abs_logit_diff=float(diff.max()) if diff.size else 0.0,
                mean_abs_logit_diff=float(diff.mean()) if diff.size else 0.0,
            ),
            score_ci95=f1_interval(label_counts(truth, ours), rows),
            drop_ci95=paired_f1_difference(label_counts(truth, theirs), label_counts(truth, ours), rows)["ci95"]
            if fp32_reference is not None
            else None,
        )


def _label_sets(data: TextDataset) -> list[tuple[str, ...]]:
    if data.labels is None:
        raise InputError(f"{data.source} has no labels; multi-label data needs a list of labels per text.")
    if data.labels and not isinstance(data.labels[0], tuple):
        raise InputError(
            f"{data.source} has one label per text; multi-label data gives each text a list "
            '(e.g. "label": ["PER", "LOC"], [] for none). Drop --multi-label for single-label data.'
        )
    return list(data.labels)
