"""Token classification data and metrics: words with tags (BIO), word-piece alignment, entity-level F1.

Torch-free: the runtime uses `first_subtokens` and `bio_entities` to turn token logits into word labels.
Alignment convention: the first word piece of each word carries the word's tag; the other pieces and
the special tokens get IGNORE (no loss, not evaluated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import read_jsonl_rows
from .errors import InputError

IGNORE = -100  # torch.nn.functional.cross_entropy's default ignore_index


@dataclass
class TokenDataset:
    words: list[list[str]]
    tags: list[list[str]] | None
    source: str = ""

    def __len__(self) -> int:
        return len(self.words)

    @property
    def texts(self) -> list[str]:
        """Words joined by spaces (for vocabulary extension and length statistics)."""
        return [" ".join(words) for words in self.words]


def load_token_file(path: Path, *, tokens_column: str = "tokens", tags_column: str = "tags") -> TokenDataset:
    """JSONL rows like {"tokens": ["Arsenal", "beat", "Chelsea"], "tags": ["B-ORG", "O", "B-ORG"]}."""
    path = Path(path)
    if path.suffix.lower() not in (".jsonl", ".json"):
        raise InputError(f"--task token reads JSONL with '{tokens_column}' and '{tags_column}' lists; got {path}.")
    rows = read_jsonl_rows(path)
    if not rows:
        raise InputError(f"{path} holds no rows.")
    words, tags = [], []
    has_tags = tags_column in rows[0]
    for i, row in enumerate(rows, 1):
        row_words = row.get(tokens_column)
        if not isinstance(row_words, list) or not all(isinstance(w, str) and w for w in row_words):
            raise InputError(f"{path} row {i}: '{tokens_column}' must be a list of non-empty strings.")
        words.append(row_words)
        if has_tags:
            row_tags = row.get(tags_column)
            if not isinstance(row_tags, list) or len(row_tags) != len(row_words):
                raise InputError(
                    f"{path} row {i}: '{tags_column}' must be a list with one tag per token "
                    f"({len(row_words)} tokens, got {row_tags!r:.60})."
                )
            tags.append([str(t) for t in row_tags])
    return TokenDataset(words, tags if has_tags else None, str(path))


def first_subtokens(word_ids: Sequence[int | None]) -> list[int]:
    """Positions of each word's first word piece, in word order ([CLS]/[SEP] have word id None)."""
    positions, seen = [], set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            positions.append(position)
    return positions


def align_tags(word_ids: Sequence[int | None], word_tag_ids: Sequence[int]) -> list[int]:
    """Per-token targets: the word's tag id on its first piece, IGNORE elsewhere.

    Words cut off by truncation simply have no target (and are reported by the caller)."""
    targets = [IGNORE] * len(word_ids)
    for position in first_subtokens(word_ids):
        targets[position] = word_tag_ids[word_ids[position]]
    return targets


def bio_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) spans from BIO/IOB2 tags. An I- without a matching B- starts
    a new entity (the lenient reading used by conlleval)."""
    entities, start, kind = [], None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and kind == label and start is not None
        if start is not None and not continues:
            entities.append((kind, start, i))
            start, kind = None, None
        if prefix in ("B", "I") and not continues:
            start, kind = i, label
    return entities


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
