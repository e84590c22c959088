"""`Classifier`: the front door apps embed. Needs numpy, tokenizers and onnxruntime (or openvino) only."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.artifact import MULTI_LABEL, SEQUENCE, LongText
from .model import ArtifactModel, batched_logits, softmax
from .windows import Windows, text_logits

ACTIVATIONS = ("softmax", "sigmoid", "none")  # "none": the raw logits


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float  # `label`'s score (a probability unless activation="none")
    scores: dict[str, float]  # every label's score, in the artifact's label order
    top: tuple[LabelScore, ...] = ()  # the top_k labels, highest score first (every label when top_k is None)
    labels: tuple[str, ...] = ()  # the labels given: `label` alone, or for a multi-label model every label at or
    # above its threshold (none, when no label reaches its threshold), highest score first
    windows: int = 1  # model calls the text took (long_text="chunk": windows of max_length tokens)
    truncated: bool = False  # part of the text was not read (past max_length, or past max_windows when chunked)


class Classifier(ArtifactModel):
    """A text classifier loaded from an edgebert artifact bundle.

    >>> clf = Classifier.load("artifacts/bbc-int8")
    >>> clf.predict("Arsenal win the cup").label
    'sports'
    """

    TASKS = (SEQUENCE, MULTI_LABEL)
    EXAMPLE_CALL = 'model.predict("…")'
    IN_JAVASCRIPT = True

    def predict_logits(
        self,
        texts: str | Sequence[str],
        pairs: str | Sequence[str] | None = None,
        *,
        long_text: str | LongText | None = None,
    ) -> np.ndarray:
        """(N, num_labels) float32 logits, rows in input order. `pairs`: second texts, for pair models.
        long_text: "truncate" or "chunk" (default: the artifact's policy, `manifest.long_text`)."""
        return self.read(texts, pairs, long_text=long_text)[0]

    def read(
        self,
        texts: str | Sequence[str],
        pairs: str | Sequence[str] | None = None,
        *,
        long_text: str | LongText | None = None,
    ) -> tuple[np.ndarray, Windows]:
        """(N, num_labels) logits, and the windows the texts were read in (per text: how many, whether cut)."""
        texts = _as_text_list(texts)
        pairs = None if pairs is None else _as_text_list(pairs)
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(pairs)} pairs")
        policy = self.long_text_policy(long_text)
        windows = self.encoder.encode_windows(texts, pairs, policy)
        return self.logits_of_windows(windows, policy), windows

    def run_batch(self, group: tuple[bool, str], rows: list) -> tuple[list, dict[str, float]]:
        """A server's micro-batch (serve/batcher.py): (logits, truncated, windows) per row, callers pick the scores;
        and the seconds per stage. group: (rows are (text, pair) tuples, long-text policy)."""
        with_pairs, policy = group
        texts, pairs = (list(x) for x in zip(*rows, strict=True)) if with_pairs else (rows, None)
        long_text = self.long_text_policy(policy)
        started = time.perf_counter()
        windows = self.encoder.encode_windows(texts, pairs, long_text)
        tokenized = time.perf_counter()
        logits = self.logits_of_windows(windows, long_text)
        timings = {"tokenization": tokenized - started, "inference": time.perf_counter() - tokenized}
        return list(zip(logits, windows.truncated.tolist(), windows.counts.tolist(), strict=True)), timings

    def logits_of_windows(self, windows: Windows, long_text: LongText) -> np.ndarray:
        """(N, num_labels) logits of texts read as `windows` (TextEncoder.encode_windows under `long_text`)."""
        return text_logits(self.logits_of_ids(windows.ids, windows.type_ids), windows, long_text.aggregate)

    def logits_of_ids(self, ids: list[list[int]], type_ids: list[list[int]]) -> np.ndarray:
        """(N, num_labels) logits of texts already tokenized by `self.encoder` (ids and type ids per text)."""
        return batched_logits(self.backend, self.encoder, ids, type_ids, self.batch_size, len(self.labels))

    def predict_proba(
        self,
        texts: str | Sequence[str],
        pairs: str | Sequence[str] | None = None,
        *,
        long_text: str | LongText | None = None,
    ) -> np.ndarray:
        """(N, num_labels) probabilities (the task's activation), columns in `self.labels` order."""
        return self.activate(self.predict_logits(texts, pairs, long_text=long_text))

    @property
    def multi_label(self) -> bool:
        return self.manifest.task == MULTI_LABEL

    @property
    def activation(self) -> str:
        """The activation the task calls for: softmax (one label per text) or sigmoid (multi-label)."""
        return "sigmoid" if self.multi_label else "softmax"

    def activate(self, logits: np.ndarray, activation: str | None = None) -> np.ndarray:
        """Scores from (N, num_labels) logits: `activation` (default: the task's) applied per row."""
        activation = activation or self.activation
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if activation == "softmax":
            return softmax(logits)
        if activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-logits))
        return logits

    def predict(
        self,
        texts: str | Sequence[str],
        pairs: str | Sequence[str] | None = None,
        *,
        top_k: int | None = None,
        activation: str | None = None,
        long_text: str | LongText | None = None,
    ) -> Prediction | list[Prediction]:
        """One Prediction for a str; a list of Predictions, in input order, for a sequence.

        top_k: how many labels `Prediction.top` ranks (None: all); activation: "softmax", "sigmoid" or "none"
        (raw logits) instead of the task's own; long_text: "truncate" (read the first max_length tokens) or "chunk"
        (read the text in windows and average their logits); default: the artifact's policy."""
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        logits, windows = self.read(texts, pairs, long_text=long_text)
        scores = self.activate(logits, activation)
        given = self.decide(logits)  # decided on the task's own scores, whatever `activation` shows
        read = zip(scores, given, windows.counts, windows.truncated, strict=True)
        predictions = [self._prediction(row, top_k, labels, int(n), bool(cut)) for row, labels, n, cut in read]
        return predictions[0] if isinstance(texts, str) else predictions

    def decide(self, logits: np.ndarray) -> list[tuple[str, ...]]:
        """The labels each row is given: the argmax, or every label at or above its threshold (multi-label)."""
        if not self.multi_label:
            return [(self.labels[int(i)],) for i in logits.argmax(-1)]
        scores, thresholds = self.activate(logits), np.asarray(self.manifest.thresholds)
        return [
            tuple(self.labels[int(i)] for i in np.argsort(-row, kind="stable") if row[i] >= thresholds[i])
            for row in scores
        ]

    def predict_iter(
        self,
        texts: Iterable[str],
        pairs: Iterable[str] | None = None,
        *,
        batch_size: int = 256,
        top_k: int | None = None,
        activation: str | None = None,
        long_text: str | LongText | None = None,
    ) -> Iterator[Prediction]:
        """Predictions for a stream of texts (a file, a generator), in input order, reading `batch_size` texts at a
        time: memory stays bounded whatever the stream's length."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        texts, pairs = iter(texts), None if pairs is None else iter(pairs)
        while chunk := list(itertools.islice(texts, batch_size)):
            chunk_pairs = None if pairs is None else list(itertools.islice(pairs, len(chunk)))
            yield from self.predict(chunk, chunk_pairs, top_k=top_k, activation=activation, long_text=long_text)

    async def apredict(
        self,
        texts: str | Sequence[str],
        pairs: str | Sequence[str] | None = None,
        *,
        top_k: int | None = None,
        activation: str | None = None,
        long_text: str | LongText | None = None,
    ) -> Prediction | list[Prediction]:
        """`predict` for asyncio code: runs in a worker thread, so the event loop keeps serving (the model is safe
        to call from several threads)."""
        options = dict(top_k=top_k, activation=activation, long_text=long_text)
        return await asyncio.to_thread(self.predict, texts, pairs, **options)

    def _prediction(
        self, row: np.ndarray, top_k: int | None, labels: tuple[str, ...], windows: int, truncated: bool
    ) -> Prediction:
        order = np.argsort(-row, kind="stable")[:top_k]
        best = int(order[0])
        return Prediction(
            self.labels[best],
            float(row[best]),
            dict(zip(self.labels, map(float, row), strict=True)),
            tuple(LabelScore(self.labels[int(i)], float(row[int(i)])) for i in order),
            labels,
            windows,
            truncated,
        )

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
