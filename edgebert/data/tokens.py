"""Token-classification data: words with BIO tags, and the per-token training targets.

The first word piece of each word carries the word's tag; the other pieces and the special tokens get
IGNORE (no loss, not evaluated). Entity metrics are in core/metrics.py, the tag scheme in core/bio.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.bio import first_subtokens
from ..core.errors import InputError
from .text import read_jsonl_rows

IGNORE = -100  # torch.nn.functional.cross_entropy's default ignore_index
UNLABELLED = -101  # distill --unlabelled: a row the student learns from its teacher's answer alone (no label)


@dataclass
class TokenDataset:
    words: list[list[str]]
    tags: list[list[str]] | None
    source: str = ""

    def subset(self, rows: Sequence[int], source: str) -> TokenDataset:
        pick = lambda xs: None if xs is None else [xs[i] for i in rows]  # noqa: E731
        return TokenDataset(pick(self.words), pick(self.tags), source)

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


def align_tags(word_ids: Sequence[int | None], word_tag_ids: Sequence[int]) -> list[int]:
    """Per-token targets: the word's tag id on its first piece, IGNORE elsewhere.

    Words cut off by truncation simply have no target (and are reported by the caller)."""
    targets = [IGNORE] * len(word_ids)
    for position in first_subtokens(word_ids):
        targets[position] = word_tag_ids[word_ids[position]]
    return targets
