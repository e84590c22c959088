"""`TokenClassifier`: per-word labels (e.g. named entities) with character offsets. Torch-free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.artifact import TOKEN
from ..core.bio import bio_entities, decode_bio, first_subtokens
from ..core.unicode_text import valid_unicode
from .model import ArtifactModel, batched_token_logits, softmax


@dataclass(frozen=True)
class WordLabel:
    word: str
    label: str
    score: float  # probability of `label` (BIO-decoded, so not always the top one), from the word's first word piece
    start: int  # character offsets of the word in the input text
    end: int


@dataclass(frozen=True)
class Entity:
    label: str  # entity type: "PER" for B-PER/I-PER
    text: str
    start: int
    end: int
    score: float  # mean of its words' scores


class TokenClassifier(ArtifactModel):
    """A token classifier loaded from an edgebert artifact bundle.

    Words are split the way the model's tokenizer splits text (whitespace, punctuation, and one word per
    Chinese character); each word is labelled by its first word piece, as in training, and the labels are the
    most probable valid BIO sequence (no I-X without a B-X before it), not each word's argmax. Words beyond
    the artifact's max_length tokens are not labelled.

    >>> ner = TokenClassifier.load("artifacts/ner-int8")
    >>> ner.entities("Arsenal signed Henry")
    [Entity(label='ORG', text='Arsenal', start=0, end=7, score=0.98), ...]
    """

    TASKS = (TOKEN,)

    def predict(self, texts: str | Sequence[str]) -> list[WordLabel] | list[list[WordLabel]]:
        """Word labels for one text (a list), or for each of several texts (a list of lists)."""
        single = isinstance(texts, str)
        batch = [valid_unicode(t) for t in ([texts] if single else texts)]  # the words echo the text
        ids, type_ids, word_ids, offsets = self.encoder.encode_with_words(batch)
        logits = batched_token_logits(self.backend, self.encoder, ids, type_ids, self.batch_size, len(self.labels))
        results = [
            self._words(text, rows, words, spans)
            for text, rows, words, spans in zip(batch, logits, word_ids, offsets, strict=True)
        ]
        return results[0] if single else results

    def entities(self, text: str) -> list[Entity]:
        """Entities from the BIO labels of `text`'s words, with character offsets into `text`."""
        text = valid_unicode(text)
        words = self.predict(text)
        found = []
        for kind, first, last in bio_entities([w.label for w in words]):
            start, end = words[first].start, words[last - 1].end
            score = float(np.mean([w.score for w in words[first:last]]))
            found.append(Entity(kind, text[start:end], start, end, score))
        return found

    def _words(self, text: str, logits: np.ndarray, word_ids: list, offsets: list) -> list[WordLabel]:
        probabilities = softmax(logits)  # (T, K)
        spans: dict[int, list[int]] = {}
        for word, (start, end) in zip(word_ids, offsets, strict=True):
            if word is not None:
                span = spans.setdefault(word, [start, end])
                span[1] = end
        positions = first_subtokens(word_ids)
        tags = decode_bio(logits[positions], self.labels)  # the best valid BIO sequence, not argmax per word
        result = []
        for position, tag in zip(positions, tags, strict=True):
            start, end = spans[word_ids[position]]
            result.append(WordLabel(text[start:end], self.labels[tag], float(probabilities[position, tag]), start, end))
        return result

    def _golden_diff(self, ids: list, type_ids: list, golden_logits: list) -> float:
        rows = batched_token_logits(self.backend, self.encoder, ids, type_ids, 1, len(self.labels))
        return max(
            (float(np.max(np.abs(r - np.asarray(g)), initial=0.0)) for r, g in zip(rows, golden_logits, strict=True)),
            default=0.0,
        )
