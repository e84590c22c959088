"""Token classification: one BIO tag per word, learned on each word's first word piece. Selection metric:
entity-level F1. Tags are decoded as the most probable valid BIO sequence (core/bio.decode_bio)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import TOKEN
from ..core.bio import decode_bio, first_subtokens, non_bio_labels
from ..core.cpu import usable_cpu_count
from ..core.errors import ArtifactError, InputError
from ..core.measurements import EntityDrift, Evaluation
from ..core.metrics import (
    bootstrap_rows,
    entity_counts,
    entity_drift,
    entity_metrics,
    f1_interval,
    paired_f1_difference,
)
from ..data.bundled import TOKEN_DATASETS, bundled_name
from ..data.load import load_token_data
from ..data.text import LabelSet
from ..data.tokens import IGNORE, TokenDataset, align_tags
from ..runtime.backends import Backend, open_backend
from ..runtime.model import batched_token_logits
from ..runtime.tokenization import Batch, TextEncoder
from .base import EVAL_BOOTSTRAP, Encoded, Task


class TokenTask(Task):
    name = TOKEN
    kind = "token classifier (one BIO label per word)"  # as a model card titles it
    score_name = "f1"
    metric = "entity F1"
    data_unit = "sentences"
    parity_unit = "tokens"
    hf_task = "token-classification"
    hf_auto_class = "AutoModelForTokenClassification"
    tunable = False
    poolings = ("cls",)  # every token is labelled: there is no sentence vector
    headline_keys = ("precision", "recall", "f1")
    trains_on_windows = False  # the runtime reads long sentences in windows and stitches them; training cuts
    headline_key = "f1"

    @classmethod
    def describe(cls, metrics: dict[str, Any]) -> str:
        return ", ".join(f"entity {k} {metrics[k]:.4f}" for k in cls.headline_keys)

    @classmethod
    def from_training_data(cls, train_data: TokenDataset, label_column: str = "tags") -> TokenTask:
        if train_data.tags is None:
            raise InputError(f"{train_data.source} has no 'tags' lists; token training needs one tag per token.")
        return cls(LabelSet.from_labels([t for tags in train_data.tags for t in tags]))

    @staticmethod
    def load_data(source: str, split: str, **columns: str) -> TokenDataset:
        return load_token_data(source, split)

    @staticmethod
    def load_training(data: str, eval_data: str | None, *, seed: int, say, **columns: str) -> tuple:
        if eval_data is None and bundled_name(data) in TOKEN_DATASETS:
            eval_data = f"{bundled_name(data)}:dev"
        if eval_data is None:
            raise InputError("--task token needs --eval FILE (JSONL with tokens and tags) for model selection.")
        return load_token_data(data, "train"), load_token_data(eval_data, "dev")

    @staticmethod
    def load_unlabelled(source: str, **columns: str) -> TokenDataset:
        return load_token_data(source, "train")

    @staticmethod
    def encode_inputs(encoder: TextEncoder, data: TokenDataset) -> tuple[list, list]:
        ids, types, _word_ids = encoder.encode_words(data.words)
        return ids, types

    @staticmethod
    def tokenizer_inputs(data: TokenDataset) -> tuple[list, bool]:
        return [list(words) for words in data.words], True

    def encode(self, encoder: TextEncoder, data: TokenDataset) -> Encoded:
        if not data.words:
            raise InputError(f"{data.source} is empty.")
        if data.tags is None:
            raise InputError(f"{data.source} has no 'tags' lists.")
        ids, types, word_ids = encoder.encode_words(data.words)
        targets = []
        for row, tags in enumerate(data.tags):
            tag_ids = self.labels.encode(tags, data.source)
            targets.append(align_tags(word_ids[row], tag_ids))
            self.truncated_words += len(tags) - len(first_subtokens(word_ids[row]))
        return Encoded(ids, types, targets, word_ids)

    def class_counts(self, encoded: Encoded) -> np.ndarray:
        counts = Counter(t for row in encoded.targets for t in row if t != IGNORE)
        return np.asarray([counts.get(i, 0) for i in range(self.num_labels)])

    def batch_targets(self, encoded: Encoded, batch: Batch) -> np.ndarray:
        targets = np.full(batch.input_ids.shape, IGNORE, dtype=np.int64)  # (B, T)
        for row, i in enumerate(batch.indices):
            targets[row, : len(encoded.targets[i])] = encoded.targets[i]
        return targets

    def logits(self, engine: Backend, encoder: TextEncoder, ids, type_ids, batch_size: int = 32) -> np.ndarray:
        rows = batched_token_logits(engine, encoder, ids, type_ids, batch_size, self.num_labels)
        return np.concatenate(rows) if rows else np.zeros((0, self.num_labels), np.float32)  # (total tokens, K)

    def golden_logits(self, engine: Backend, encoder: TextEncoder, ids, type_ids) -> list:
        return [row.tolist() for row in batched_token_logits(engine, encoder, ids, type_ids, 1, self.num_labels)]

    def evaluate(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> dict[str, Any]:
        return entity_metrics(*self.tags(backend, encoder, encoded, batch_size))

    def tags(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> tuple[list, list]:
        """(true tags, predicted tags) per sentence, one per word (its first word piece)."""
        logits = batched_token_logits(backend, encoder, encoded.ids, encoded.type_ids, batch_size, self.num_labels)
        return self.tags_from_logits(logits, encoded)

    def tags_from_logits(self, logits: list[np.ndarray] | np.ndarray, encoded: Encoded) -> tuple[list, list]:
        """logits: a (T_i, K) array per sentence, or one (sum T_i, K) array of all sentences' tokens in order."""
        if isinstance(logits, np.ndarray):
            logits = np.split(logits, np.cumsum([len(t) for t in encoded.targets])[:-1])
        names = self.labels.names
        true_tags, pred_tags = [], []
        for row_logits, targets in zip(logits, encoded.targets, strict=True):
            kept = [p for p, t in enumerate(targets) if t != IGNORE]
            true_tags.append([names[targets[p]] for p in kept])
            pred_tags.append([names[i] for i in decode_bio(row_logits[kept], names)])
        return true_tags, pred_tags

    def budget_score(self, encoded: Encoded) -> Callable[[np.ndarray], float]:
        return lambda flat_logits: entity_metrics(*self.tags_from_logits(flat_logits, encoded))["f1"]

    def budget_interval(self, encoded: Encoded) -> Callable[[np.ndarray, np.ndarray], list[float]]:
        rows = bootstrap_rows(len(encoded.targets), samples=EVAL_BOOTSTRAP)

        def interval(reference: np.ndarray, candidate: np.ndarray) -> list[float]:
            true_tags, reference_tags = self.tags_from_logits(reference, encoded)
            _, candidate_tags = self.tags_from_logits(candidate, encoded)
            reference_counts = entity_counts(true_tags, reference_tags)
            return paired_f1_difference(reference_counts, entity_counts(true_tags, candidate_tags), rows)["ci95"]

        return interval

    def budget_logits(self, run, encoded: Encoded, rows: np.ndarray | None) -> np.ndarray:
        flat = run(encoded.ids, encoded.type_ids)  # rows index tokens of all sentences: score every sentence, then pick
        return flat if rows is None else flat[rows]

    def artifact_evaluation(
        self, *, source, encoded, candidate, fp32_reference, fp32_graph, encoder, candidate_engine
    ) -> Evaluation:
        true_tags, candidate_tags = self.tags(candidate_engine(), encoder, encoded, 32)
        scores = reference = entity_metrics(true_tags, candidate_tags)
        candidate_counts = entity_counts(true_tags, candidate_tags)
        rows = bootstrap_rows(len(true_tags), samples=EVAL_BOOTSTRAP)
        changes = drop_ci95 = None
        if fp32_graph is not None:
            fp32_engine = open_backend("onnxruntime", fp32_graph, usable_cpu_count())
            _, reference_tags = self.tags(fp32_engine, encoder, encoded, 32)
            reference = entity_metrics(true_tags, reference_tags)
            changes = EntityDrift(**entity_drift(reference_tags, candidate_tags))
            reference_counts = entity_counts(true_tags, reference_tags)
            drop_ci95 = paired_f1_difference(reference_counts, candidate_counts, rows)["ci95"]
        return Evaluation(
            data=source,
            n=len(encoded.ids),
            metric="entity_f1",
            score=scores["f1"],
            reference_score=reference["f1"],
            drop_points=100 * (reference["f1"] - scores["f1"]),
            metrics=scores,
            reference_metrics=reference if fp32_graph is not None else None,
            entity_drift=changes,
            score_ci95=f1_interval(candidate_counts, rows),
            drop_ci95=drop_ci95,
        )

    @classmethod
    def check_labels(cls, labels: list[str], where) -> None:
        if odd := non_bio_labels(labels):
            raise ArtifactError(
                f"{where}: token labels must be BIO tags (O, B-TYPE, I-TYPE); {odd[:5]} are not, so no entity would "
                "ever be found. Relabel id2label in BIO, or fine-tune with BIO tags."
            )

    def check_export(self, *, pooling: str, light_last_layer: bool, calibrated: bool, checkpoint: Path) -> None:
        if light_last_layer:
            raise InputError(
                f"--light-last-layer applies to [CLS]-pooled sequence models; {checkpoint} is a {self.name} model "
                f"with {pooling} pooling. Drop the flag."
            )
        if calibrated:
            raise InputError("Static INT8 calibration is not supported for token classification yet; use --int8.")
