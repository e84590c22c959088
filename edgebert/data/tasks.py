"""What differs between sequence and token classification: encoding, targets, class counts, evaluation.

The training loop (train/loop.py) and the export's evaluation ask a task object for these; torch-free.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.artifact import SEQUENCE, TOKEN
from ..core.bio import decode_bio, first_subtokens
from ..core.errors import InputError
from ..core.metrics import classification_metrics, entity_metrics
from ..runtime.model import batched_logits, batched_token_logits
from ..runtime.tokenization import Batch, TextEncoder
from .text import LabelSet, TextDataset, require_labels
from .tokens import IGNORE, TokenDataset, align_tags


@dataclass
class Encoded:
    ids: list[list[int]]
    type_ids: list[list[int]]
    targets: list  # sequence: one label id per row; token: one id (or IGNORE) per token
    word_ids: list | None = None  # token task: token -> word index


class SequenceTask:
    """One label per text (or text pair). Selection metric: macro-F1."""

    name = SEQUENCE
    score_name = "macro_f1"

    def __init__(self, labels: LabelSet) -> None:
        self.labels = labels

    @classmethod
    def from_training_data(cls, train_data: TextDataset, label_column: str) -> SequenceTask:
        return cls(LabelSet.from_labels(require_labels(train_data, label_column)))

    def encode(self, encoder: TextEncoder, data: TextDataset) -> Encoded:
        if not data.texts:
            raise InputError(f"{data.source} is empty.")
        ids, types = encoder.encode(data.texts, data.pairs)
        return Encoded(ids, types, self.labels.encode(require_labels(data), data.source))

    def class_counts(self, encoded: Encoded) -> np.ndarray:
        return np.bincount(encoded.targets, minlength=len(self.labels.names))

    def batch_targets(self, encoded: Encoded, batch: Batch) -> np.ndarray:
        return np.asarray([encoded.targets[i] for i in batch.indices], dtype=np.int64)  # (B,)

    def evaluate(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> dict[str, Any]:
        logits = batched_logits(backend, encoder, encoded.ids, encoded.type_ids, batch_size, len(self.labels.names))
        return classification_metrics(encoded.targets, logits.argmax(-1), self.labels.names)


class TokenTask:
    """One tag per word, learned on each word's first word piece. Selection metric: entity-level F1."""

    name = TOKEN
    score_name = "f1"

    def __init__(self, labels: LabelSet) -> None:
        self.labels = labels
        self.truncated_words = 0

    @classmethod
    def from_training_data(cls, train_data: TokenDataset) -> TokenTask:
        if train_data.tags is None:
            raise InputError(f"{train_data.source} has no 'tags' lists; token training needs one tag per token.")
        return cls(LabelSet.from_labels([t for tags in train_data.tags for t in tags]))

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
        return np.asarray([counts.get(i, 0) for i in range(len(self.labels.names))])

    def batch_targets(self, encoded: Encoded, batch: Batch) -> np.ndarray:
        targets = np.full(batch.input_ids.shape, IGNORE, dtype=np.int64)  # (B, T)
        for row, i in enumerate(batch.indices):
            targets[row, : len(encoded.targets[i])] = encoded.targets[i]
        return targets

    def evaluate(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> dict[str, Any]:
        return entity_metrics(*self.tags(backend, encoder, encoded, batch_size))

    def tags(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> tuple[list, list]:
        """(true tags, predicted tags) per sentence, one per word (its first word piece)."""
        logits = batched_token_logits(
            backend, encoder, encoded.ids, encoded.type_ids, batch_size, len(self.labels.names)
        )
        return self.tags_from_logits(logits, encoded)

    def tags_from_logits(self, logits: list[np.ndarray], encoded: Encoded) -> tuple[list, list]:
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


def task_for(name: str, labels: LabelSet) -> SequenceTask | TokenTask:
    return TokenTask(labels) if name == TOKEN else SequenceTask(labels)
