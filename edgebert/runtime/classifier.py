"""`Classifier`: the front door apps embed. Needs numpy, tokenizers and onnxruntime (or openvino) only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..artifact import Manifest, read_manifest, verify_files
from ..cpu import usable_cpu_count
from ..errors import ArtifactError
from .backends import Backend, open_backend
from .tokenization import TextEncoder

TASK = "text-classification"
ModelT = TypeVar("ModelT", bound="ArtifactModel")


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float  # probability of `label`
    scores: dict[str, float]  # probability of every label


class ArtifactModel:
    """What every front-door class shares: loading a bundle of its task, labels, and the golden-sample check.

    Subclasses set TASK and say how far their outputs are from the golden logits (`_golden_diff`)."""

    TASK = ""

    def __init__(self, manifest: Manifest, encoder: TextEncoder, backend: Backend, *, batch_size: int = 32) -> None:
        self.manifest = manifest
        self.encoder = encoder
        self.backend = backend
        self.batch_size = batch_size

    @classmethod
    def load(
        cls: type[ModelT],
        path: str | Path,
        threads: int | None = None,
        *,
        verify: bool = True,
        check_golden: bool = True,
        batch_size: int = 32,
        openvino_mode: str = "latency",
    ) -> ModelT:
        """Load and check an artifact.

        threads: intra-op threads; default is the CPUs this process may use (affinity, cgroup quota).
        verify: check every file's sha256 against the manifest.
        check_golden: replay the golden sample stored at export and refuse mismatching outputs.
        """
        manifest, encoder, backend = open_bundle(path, cls.TASK, threads, verify=verify, openvino_mode=openvino_mode)
        model = cls(manifest, encoder, backend, batch_size=batch_size)
        if check_golden and manifest.golden:
            model._check_golden(Path(path))
        return model

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def _check_golden(self, bundle: Path) -> None:
        golden = self.manifest.golden
        ids, type_ids = self.encoder.encode(golden.texts)
        if ids != golden.input_ids:
            raise ArtifactError(
                f"{bundle}: the tokenizer gives different token ids than at export; the tokenizers package "
                "version or tokenizer.json differs. Install the version in the manifest's 'tools' or re-export."
            )
        diff = self._golden_diff(ids, type_ids, golden.logits)
        if diff > golden.atol:
            raise ArtifactError(
                f"{bundle}: outputs differ from those recorded at export (max |Δlogit| {diff:.4g} > {golden.atol}). "
                "The runtime version or this CPU's kernels differ from the export machine; re-export for this "
                "CPU (`edgebert export --target ...`) or load with check_golden=False to accept it."
            )

    def _golden_diff(self, ids: list, type_ids: list, golden_logits: list) -> float:
        raise NotImplementedError


class Classifier(ArtifactModel):
    """A text classifier loaded from an edgebert artifact bundle.

    >>> clf = Classifier.load("artifacts/bbc-int8")
    >>> clf.predict("Arsenal win the cup").label
    'sports'
    """

    TASK = TASK

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


def open_bundle(
    path: str | Path, task: str, threads: int | None, *, verify: bool, openvino_mode: str
) -> tuple[Manifest, TextEncoder, Backend]:
    """Read and check a bundle's manifest (and file checksums), open its tokenizer and model."""
    bundle = Path(path)
    manifest = read_manifest(bundle)
    if manifest.task != task:
        hint = "TokenClassifier" if manifest.task == "token-classification" else "Classifier"
        raise ArtifactError(f"{bundle} holds a '{manifest.task}' model, not '{task}'; load it with {hint}.")
    if verify:
        verify_files(bundle, manifest)
    encoder = TextEncoder.from_file(bundle / "tokenizer.json", manifest.max_length)
    options = {"mode": openvino_mode} if manifest.backend == "openvino" else {}
    backend = open_backend(manifest.backend, bundle / manifest.model_files[0], threads or usable_cpu_count(), **options)
    return manifest, encoder, backend


def batched_logits(
    backend: Backend, encoder: TextEncoder, ids: list, type_ids: list, batch_size: int, num_labels: int
) -> np.ndarray:
    """Run already-tokenized rows through `backend` in length buckets; (N, num_labels) logits in input order."""
    logits = np.empty((len(ids), num_labels), dtype=np.float32)
    for batch in encoder.batches(ids, type_ids, batch_size):
        logits[batch.indices] = backend.run(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    return logits


def batched_token_logits(
    backend: Backend, encoder: TextEncoder, ids: list, type_ids: list, batch_size: int
) -> list[np.ndarray]:
    """Per-token logits for already-tokenized rows: a (T_i, num_labels) array per row, in input order."""
    rows: list[np.ndarray] = [np.empty(0)] * len(ids)
    for batch in encoder.batches(ids, type_ids, batch_size):
        logits = backend.run(batch.input_ids, batch.attention_mask, batch.token_type_ids)  # (B, T, K)
        for row, i in enumerate(batch.indices):
            rows[i] = logits[row, : len(ids[i])]
    return rows


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _as_text_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if texts is None or not isinstance(texts, Sequence | np.ndarray):
        raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return list(texts)
