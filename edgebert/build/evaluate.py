"""What `--eval` measures at export: the artifact's scores, the fp32 graph's, and what quantization changed.

Sequence task: accuracy / macro-F1 and logit drift against the fp32 graph. Token task: entity-level F1.
Both end in the manifest's `Evaluation` section, whose `drop_points` the accuracy budget reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.artifact import SEQUENCE, TOKEN, Drift, EntityDrift, Evaluation
from ..core.cpu import usable_cpu_count
from ..core.metrics import classification_metrics, drift, entity_drift, entity_metrics
from ..data.tasks import task_for
from ..data.text import LabelSet
from ..runtime.backends import Backend, open_backend
from ..runtime.model import batched_logits, batched_token_logits
from ..runtime.tokenization import TextEncoder


def model_logits(
    backend: str,
    path: Path,
    encoder: TextEncoder,
    ids: list,
    type_ids: list,
    num_labels: int,
    *,
    task: str = SEQUENCE,
    row_by_row: bool = False,
) -> np.ndarray:
    """row_by_row: as the runtime will run it (core.artifact.quantizes_per_call), so scores match what users get."""
    engine = open_backend(backend, path, usable_cpu_count(), row_by_row=row_by_row)
    return task_logits(task, engine, encoder, ids, type_ids, num_labels)


def task_logits(
    task: str, engine: Backend, encoder: TextEncoder, ids: list, type_ids: list, num_labels: int, batch_size: int = 32
) -> np.ndarray:
    """(N, K) logits per text, or for token tasks (total tokens, K): every real token of every row."""
    if task == TOKEN:
        rows = batched_token_logits(engine, encoder, ids, type_ids, batch_size, num_labels)
        return np.concatenate(rows) if rows else np.zeros((0, num_labels), np.float32)
    return batched_logits(engine, encoder, ids, type_ids, batch_size, num_labels)


def sequence_evaluation(
    source: str, reference: np.ndarray, candidate: np.ndarray, y_true: list[int], labels: LabelSet
) -> Evaluation:
    """reference: the fp32 graph's logits (the candidate's own for an fp32 artifact); both (N, K)."""
    d = drift(reference, candidate, y_true, labels.names)
    quantized = reference is not candidate
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
    )


def token_evaluation(
    backend: str,
    fp32_graph: Path | None,
    model_path: Path,
    encoder: TextEncoder,
    labels: LabelSet,
    data,
    *,
    row_by_row: bool = False,
) -> Evaluation:
    """Entity-level scores of the exported model and, when quantized, of its fp32 graph, and what changed."""
    task = task_for(TOKEN, labels)
    encoded = task.encode(encoder, data)
    engine = open_backend(backend, model_path, usable_cpu_count(), row_by_row=row_by_row)
    true_tags, candidate_tags = task.tags(engine, encoder, encoded, 32)
    candidate = reference = entity_metrics(true_tags, candidate_tags)
    changes = None
    if fp32_graph is not None:
        fp32_engine = open_backend("onnxruntime", fp32_graph, usable_cpu_count())
        _, reference_tags = task.tags(fp32_engine, encoder, encoded, 32)
        reference = entity_metrics(true_tags, reference_tags)
        changes = EntityDrift(**entity_drift(reference_tags, candidate_tags))
    return Evaluation(
        data=data.source,
        n=len(data),
        metric="entity_f1",
        score=candidate["f1"],
        reference_score=reference["f1"],
        drop_points=100 * (reference["f1"] - candidate["f1"]),
        metrics=candidate,
        reference_metrics=reference if fp32_graph is not None else None,
        entity_drift=changes,
    )


def entity_f1_of(task, encoded) -> Callable[[np.ndarray], float]:
    """Score function for the accuracy budget on token artifacts: entity F1 from all tokens' logits (N_tokens, K)."""

    def score(flat_logits: np.ndarray) -> float:
        return entity_metrics(*task.tags_from_logits(flat_logits, encoded))["f1"]

    return score


def accuracy_of(y_true: list[int]) -> Callable[[np.ndarray], float]:
    y = np.asarray(y_true)
    return lambda logits: float(np.mean(logits.argmax(-1) == y))
