"""`Classifier`: the front door apps embed. Needs numpy, tokenizers and onnxruntime (or openvino) only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.artifact import SEQUENCE
from .model import ArtifactModel, batched_logits, softmax


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float  # probability of `label`
    scores: dict[str, float]  # probability of every label


class Classifier(ArtifactModel):
    """A text classifier loaded from an edgebert artifact bundle.

    >>> clf = Classifier.load("artifacts/bbc-int8")
    >>> clf.predict("Arsenal win the cup").label
    'sports'
    """

    TASK = SEQUENCE

    def predict_logits(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None) -> np.ndarray:
        """(N, num_labels) float32 logits, rows in input order. `pairs`: second texts, for pair models."""
        texts = _as_text_list(texts)
        pairs = None if pairs is None else _as_text_list(pairs)
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
        ids, type_ids = self.encoder.encode(texts, pairs)
        return batched_logits(self.backend, self.encoder, ids, type_ids, self.batch_size, len(self.labels))

    def predict_proba(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None) -> np.ndarray:
        """(N, num_labels) softmax probabilities, columns in `self.labels` order."""
        return softmax(self.predict_logits(texts, pairs))

    def predict(
        self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None
    ) -> Prediction | list[Prediction]:
        """One Prediction for a str; a list of Predictions, in input order, for a sequence."""
        probabilities = self.predict_proba(texts, pairs)
        predictions = [self._prediction(row) for row in probabilities]
        return predictions[0] if isinstance(texts, str) else predictions

    def _prediction(self, row: np.ndarray) -> Prediction:
        best = int(row.argmax())
        return Prediction(self.labels[best], float(row[best]), dict(zip(self.labels, map(float, row), strict=True)))

    def _golden_diff(self, ids: list, type_ids: list, golden_logits: list) -> float:
        # One text per call, as at export: dynamic INT8 scales depend on what shares a batch.
        logits = batched_logits(self.backend, self.encoder, ids, type_ids, 1, len(self.labels))
        return float(np.max(np.abs(logits - np.asarray(golden_logits))))


def _as_text_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if texts is None or not isinstance(texts, Sequence | np.ndarray):
        raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return list(texts)
