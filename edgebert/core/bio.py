"""The BIO tag scheme of token-classification models: word pieces to words, tags to entity spans. Torch-free.

Alignment convention: the first word piece of each word carries the word's tag (in training and at run time).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np


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


def non_bio_labels(labels: Sequence[str]) -> list[str]:
    """The labels that are neither "O" nor "B-X"/"I-X": a model tagged in another scheme (BIOES, plain names) would
    export and then never find an entity, since entities are read as BIO spans."""
    return [label for label in labels if label != "O" and not (label[:2] in ("B-", "I-") and len(label) > 2)]


@functools.lru_cache(maxsize=32)
def _transition_masks(labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(start (K,), transition (K prev, K next)) as 0 where allowed and -inf where BIO forbids it:
    I-X only after B-X or I-X, never first. Labels without a B-/I- prefix ("O", plain names) go anywhere."""
    parts = [label.partition("-") for label in labels]
    start = np.zeros(len(labels))
    transition = np.zeros((len(labels), len(labels)))
    for j, (prefix, _, kind) in enumerate(parts):
        if prefix == "I":
            start[j] = -np.inf
            for i, (before, _, before_kind) in enumerate(parts):
                if not (before in ("B", "I") and before_kind == kind):
                    transition[i, j] = -np.inf
    return start, transition


def decode_bio(logits: np.ndarray, labels: Sequence[str]) -> list[int]:
    """The most probable tag sequence that is valid BIO, from each word's logits (W, K) (Viterbi over the
    per-word log-probabilities).

    Argmax per word can say `O I-PER I-PER`, a span with no beginning; conlleval's lenient reading turns it
    into an entity anyway, often with a wrong boundary. Decoding under the constraint picks the best valid
    sequence instead (B-PER I-PER I-PER, or O O O), which is what the model most likely meant.
    """
    words = len(logits)
    if words == 0:
        return []
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))  # (W, K)
    start, transition = _transition_masks(tuple(labels))
    score = log_probs[0] + start  # (K,) best score of a valid path ending in each tag
    back = np.zeros((words, len(labels)), dtype=np.int64)
    for w in range(1, words):
        candidates = score[:, None] + transition  # (K prev, K next)
        back[w] = candidates.argmax(0)
        score = candidates.max(0) + log_probs[w]
    path = [int(score.argmax())]
    for w in range(words - 1, 0, -1):
        path.append(int(back[w, path[-1]]))
    return path[::-1]
