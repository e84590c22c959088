"""The BIO tag scheme of token-classification models: word pieces to words, tags to entity spans. Torch-free.

Alignment convention: the first word piece of each word carries the word's tag (in training and at run time).
"""

from __future__ import annotations

from collections.abc import Sequence


def first_subtokens(word_ids: Sequence[int | None]) -> list[int]:
    """Positions of each word's first word piece, in word order ([CLS]/[SEP] have word id None)."""
    positions, seen = [], set()
    for position, word in enumerate(word_ids):
        if word is not None and word not in seen:
            seen.add(word)
            positions.append(position)
    return positions


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
