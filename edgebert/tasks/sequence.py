"""Sequence classification: one label per text (or text pair). Selection metric: macro-F1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import SEQUENCE, LongText
from ..core.errors import InputError
from ..core.measurements import Drift, Evaluation
from ..core.metrics import (
    accuracy_interval,
    bootstrap_rows,
    classification_metrics,
    drift,
    paired_accuracy_difference,
)
from ..data.load import load_dataset, training_splits
from ..data.text import LabelSet, TextDataset, require_labels
from ..data.tokens import UNLABELLED
from ..runtime.backends import Backend
from ..runtime.model import batched_logits
from ..runtime.tokenization import Batch, TextEncoder
from .base import EVAL_BOOTSTRAP, Encoded, Task


class SequenceTask(Task):
    name = SEQUENCE
    kind = "text classifier"  # as a model card titles it
    score_name = "macro_f1"
    metric = "accuracy"
    data_unit = "texts"
    parity_unit = "texts"
    hf_task = "text-classification"
    hf_auto_class = "AutoModelForSequenceClassification"
    tunable = True
    poolings = ("cls", "mean")
    headline_keys = ("accuracy", "macro_f1")
    headline_key = "accuracy"
    distils_ensembles = True

    @classmethod
    def from_training_data(cls, train_data: TextDataset, label_column: str = "label") -> SequenceTask:
        return cls(LabelSet.from_labels(_single_labels(train_data, label_column)))

    @staticmethod
    def load_data(source: str, split: str, **columns: str) -> TextDataset:
        return load_dataset(source, split=split, **columns)

    @staticmethod
    def load_training(data: str, eval_data: str | None, *, seed: int, say, **columns: str) -> tuple:
        return training_splits(data, eval_data, seed=seed, say=say, **columns)  # or a stratified 10% of --data

    @staticmethod
    def load_unlabelled(source: str, **columns: str) -> TextDataset:
        return load_dataset(source, split="train", **{**columns, "label_column": None})

    @staticmethod
    def encode_inputs(encoder: TextEncoder, data: TextDataset) -> tuple[list, list]:
        return encoder.encode(data.texts, data.pairs)

    @staticmethod
    def tokenizer_inputs(data: TextDataset) -> tuple[list, bool]:
        return [*data.texts, *(p for p in data.pairs or () if p)], False

    def encode(self, encoder: TextEncoder, data: TextDataset) -> Encoded:
        return self.encode_read(encoder, data, LongText("truncate"))

    def encode_read(self, encoder: TextEncoder, data: TextDataset, long_text: LongText) -> Encoded:
        if not data.texts:
            raise InputError(f"{data.source} is empty.")
        if long_text.policy == "truncate":
            ids, types = encoder.encode(data.texts, data.pairs)
            return Encoded(ids, types, self.targets(data))
        windows = encoder.encode_windows(data.texts, data.pairs, long_text)  # one tokenizer pass: rows are windows
        targets = self.targets(data)
        return Encoded(windows.ids, windows.type_ids, targets, windows=windows, aggregate=long_text.aggregate)

    def encode_unlabelled(self, encoder: TextEncoder, data: TextDataset, long_text: LongText) -> Encoded:
        if not data.texts:
            raise InputError(f"{data.source} is empty.")
        if long_text.policy == "truncate":
            ids, types = encoder.encode(data.texts, data.pairs)
        else:
            windows = encoder.encode_windows(data.texts, data.pairs, long_text)  # every window is a row of its own
            ids, types = windows.ids, windows.type_ids
        return Encoded(ids, types, [UNLABELLED] * len(ids))

    def targets(self, data: TextDataset) -> list:
        """What each text should be given: its label's id."""
        return self.labels.encode(_single_labels(data), data.source)

    def class_counts(self, encoded: Encoded) -> np.ndarray:
        labelled = [t for t in encoded.targets if t >= 0]  # distill --unlabelled rows have no class
        return np.bincount(labelled, minlength=self.num_labels)

    def batch_targets(self, encoded: Encoded, batch: Batch) -> np.ndarray:
        return np.asarray([encoded.targets[i] for i in batch.indices], dtype=np.int64)  # (B,)

    def logits(self, engine: Backend, encoder: TextEncoder, ids, type_ids, batch_size: int = 32) -> np.ndarray:
        return batched_logits(engine, encoder, ids, type_ids, batch_size, self.num_labels)  # (N, K)

    def golden_logits(self, engine: Backend, encoder: TextEncoder, ids, type_ids) -> list:
        return self.logits(engine, encoder, ids, type_ids, batch_size=1).tolist()

    def evaluate(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> dict[str, Any]:
        logits = self.text_logits(self.logits(backend, encoder, encoded.ids, encoded.type_ids, batch_size), encoded)
        return classification_metrics(encoded.targets, logits.argmax(-1), self.labels.names)

    def budget_score(self, encoded: Encoded) -> Callable[[np.ndarray], float]:
        y = np.asarray(encoded.targets)
        return lambda logits: float(np.mean(logits.argmax(-1) == y))

    def budget_interval(self, encoded: Encoded) -> Callable[[np.ndarray, np.ndarray], list[float]]:
        y = np.asarray(encoded.targets)
        rows = bootstrap_rows(len(y), samples=EVAL_BOOTSTRAP)
        return lambda reference, candidate: paired_accuracy_difference(
            reference.argmax(-1) == y, candidate.argmax(-1) == y, rows
        )["ci95"]

    def changed_answers(self, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        return reference.argmax(-1) != candidate.argmax(-1)

    def answer(self, logits: np.ndarray) -> str:
        return self.labels.names[int(logits.argmax())]

    changed_labels = changed_answers  # one changed label moves accuracy by one text at most

    def budget_logits(self, run, encoded: Encoded, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            return run(encoded.ids, encoded.type_ids)
        return run([encoded.ids[i] for i in rows], [encoded.type_ids[i] for i in rows])

    def artifact_evaluation(
        self, *, source, encoded, candidate, fp32_reference, fp32_graph, encoder, candidate_engine
    ) -> Evaluation:
        return sequence_evaluation(source, fp32_reference, candidate(), encoded.targets, self.labels)

    def allows_light_last_layer(self, pooling: str) -> bool:
        return pooling == "cls"  # only [CLS] reads position 0 alone

    def check_export(self, *, pooling: str, light_last_layer: bool, calibrated: bool, checkpoint: Path) -> None:
        if light_last_layer and not self.allows_light_last_layer(pooling):
            raise InputError(
                f"--light-last-layer applies to [CLS]-pooled sequence models; {checkpoint} is a {self.name} model "
                f"with {pooling} pooling. Drop the flag."
            )


def sequence_evaluation(
    source: str, reference: np.ndarray | None, candidate: np.ndarray, y_true: list[int], labels: LabelSet
) -> Evaluation:
    """reference: the fp32 graph's logits, None for an fp32 artifact (its own are the reference); both (N, K)."""
    quantized = reference is not None
    reference = candidate if reference is None else reference
    d = drift(reference, candidate, y_true, labels.names)
    truth = np.asarray(y_true)
    ours, theirs = candidate.argmax(-1) == truth, reference.argmax(-1) == truth
    rows = bootstrap_rows(len(truth), samples=EVAL_BOOTSTRAP)
    return Evaluation(
        data=source,
        n=d["n"],
        metric="accuracy",
        score=d["candidate_accuracy"],
        reference_score=d["reference_accuracy"],
        drop_points=d["accuracy_drop_points"],
        metrics=classification_metrics(y_true, candidate.argmax(-1), labels.names),
        reference_metrics=classification_metrics(y_true, reference.argmax(-1), labels.names) if quantized else None,
        drift=Drift(
            agreement=d["agreement"],
            flips=d["flips"],
            flipped_indices=d["flipped_indices"],
            max_abs_logit_diff=d["max_abs_logit_diff"],
            mean_abs_logit_diff=d["mean_abs_logit_diff"],
        ),
        score_ci95=accuracy_interval(ours, rows)["ci95"],
        drop_ci95=paired_accuracy_difference(theirs, ours, rows)["ci95"] if quantized else None,
    )


def _single_labels(data: TextDataset, label_column: str = "label") -> list[str]:
    labels = require_labels(data, label_column)
    if labels and isinstance(labels[0], tuple):
        raise InputError(
            f"{data.source} gives each text a list of labels: train a multi-label model (--multi-label), or give "
            "one label per text."
        )
    return labels
