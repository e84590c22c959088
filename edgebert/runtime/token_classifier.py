"""`TokenClassifier`: per-word labels (e.g. named entities) with character offsets. Torch-free."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.artifact import TOKEN, LongText
from ..core.bio import bio_entities, decode_bio, first_subtokens
from ..core.unicode_text import valid_unicode
from .model import ArtifactModel, batched_token_logits, softmax
from .windows import Windows, stitch


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
    the artifact's max_length tokens are not labelled, unless the text is read in windows (long_text="chunk"):
    then each token is labelled from the window where it sits most centrally, up to max_windows windows.

    >>> ner = TokenClassifier.load("artifacts/ner-int8")
    >>> ner.entities("Arsenal signed Henry")
    [Entity(label='ORG', text='Arsenal', start=0, end=7, score=0.98), ...]
    """

    TASKS = (TOKEN,)
    EXAMPLE_CALL = 'model.entities("…")'
    LABELS_TOKENS = True

    def predict(
        self, texts: str | Sequence[str], *, long_text: str | LongText | None = None
    ) -> list[WordLabel] | list[list[WordLabel]]:
        """Word labels for one text (a list), or for each of several texts (a list of lists).
        long_text: "truncate" or "chunk" (default: the artifact's policy)."""
        single = isinstance(texts, str)
        batch = [valid_unicode(t) for t in ([texts] if single else texts)]  # the words echo the text
        windows = self.encoder.encode_windows(batch, long_text=self.long_text_policy(long_text), words=True)
        rows = batched_token_logits(
            self.backend, self.encoder, windows.ids, windows.type_ids, self.batch_size, len(self.labels)
        )
        results = []
        for text, (tokens, word_ids, offsets), mine in zip(batch, windows.read, windows.per_text(), strict=True):
            results.append(self._words(text, _text_rows(windows, rows, mine, tokens), word_ids, offsets))
        return results[0] if single else results

    def run_batch(self, group, texts: list[str]) -> tuple[list[list[Entity]], dict[str, float]]:
        """A server's micro-batch (serve/batcher.py): each text's entities, and the seconds it took."""
        started = time.perf_counter()
        return [self.entities(text) for text in texts], {"inference": time.perf_counter() - started}

    def entities(self, text: str, *, long_text: str | LongText | None = None) -> list[Entity]:
        """Entities from the BIO labels of `text`'s words, with character offsets into `text`."""
        text = valid_unicode(text)
        words = self.predict(text, long_text=long_text)
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


def _text_rows(windows: Windows, rows: list[np.ndarray], mine: range, tokens: int) -> np.ndarray:
    """(tokens, K) logits of one text from its windows `mine`: the one window's, or the windows' stitched."""
    if len(mine) == 1:
        return rows[mine[0]]
    starts = [windows.starts[w] for w in mine]
    return stitch([rows[w] for w in mine], starts, windows.prefix, windows.suffix, tokens)
