"""Tokenization and length bucketing, shared by training and the runtime so their ids can never differ."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ..core.artifact import LongText
from ..core.errors import ArtifactError, InputError
from ..core.unicode_text import valid_unicode
from .windows import Windows, window_starts

TRUNCATE = LongText("truncate")


@dataclass
class Batch:
    indices: np.ndarray  # (B,) positions of these rows in the caller's input list
    input_ids: np.ndarray  # (B, T) int64, T = longest row in this batch
    attention_mask: np.ndarray  # (B, T) int64, 1 for real tokens
    token_type_ids: np.ndarray  # (B, T) int64


class TextEncoder:
    """Wraps a `tokenizers` tokenizer.json with edgebert's own truncation and no fixed padding.

    Some tokenizer.json files carry `padding: Fixed(128)` and a truncation length; both are replaced
    here, since padding every input to a fixed length wastes most of the compute on short texts.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 (room for [CLS] x [SEP]), got {max_length}")
        self.max_length = max_length
        padding = tokenizer.padding or {}
        pad = (
            tokenizer.token_to_id("[PAD]")
            if tokenizer.token_to_id("[PAD]") is not None
            else tokenizer.token_to_id("<pad>")
        )
        self.pad_id = int(padding.get("pad_id", pad or 0))  # [PAD] (WordPiece) or <pad> (SentencePiece)
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self.tokenizer = tokenizer
        probe = tokenizer.encode("a").special_tokens_mask  # e.g. [1, 0, 1]: [CLS] a [SEP]
        self.prefix, self.suffix = (probe.index(0), probe[::-1].index(0)) if 0 in probe else (0, 0)
        self._readers: dict[int, Tokenizer] = {}  # tokens read per text -> a tokenizer cutting there (chunk)
        self._readers_lock = threading.Lock()

    @classmethod
    def from_bytes(cls, data: bytes, max_length: int, *, where: str | Path = "tokenizer.json") -> TextEncoder:
        try:
            tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files; UnicodeDecodeError
            raise ArtifactError(f"Cannot read tokenizer {where}: {exc}. Re-export the artifact.") from exc
        return cls(tokenizer, max_length)

    @classmethod
    def from_file(cls, path: str | Path, max_length: int) -> TextEncoder:
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on malformed files
            raise ArtifactError(f"Cannot read tokenizer {path}: {exc}. Re-export the artifact.") from exc
        return cls(tokenizer, max_length)

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.encode(texts)[0]

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> tuple[list, list]:
        """Token ids and token type ids per text, unpadded."""
        ids, type_ids, _ = self.encode_counted(texts, pairs)
        return ids, type_ids

    def encode_counted(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> tuple[list, list, list]:
        """`encode`, plus the tokens each text (or pair) has before truncation, from the same tokenizer pass
        (capped: a count past max_length + SPILL is only 'too long')."""
        encodings, counts = self._read_truncated(texts, pairs)
        return [e.ids for e in encodings], [e.type_ids for e in encodings], counts

    def _read_truncated(self, texts: Sequence[str], pairs: Sequence[str] | None) -> tuple[list, list[int]]:
        """Encodings cut at max_length, and the tokens each text (or pair) has before the cut."""
        inputs = list(texts) if pairs is None else list(zip(texts, pairs, strict=True))
        encodings = self._encode_bounded(inputs)
        return encodings, [len(e.ids) + sum(len(o.ids) for o in e.overflowing) for e in encodings]

    def encode_windows(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        long_text: LongText = TRUNCATE,
        *,
        words: bool = False,
    ) -> Windows:
        """The rows the model runs for `texts` under `long_text` (runtime/windows.py), with what maps them back.
        words: also keep each text's word ids and character offsets as read (token classification)."""
        if long_text.policy == "truncate" or pairs is not None:
            encodings, counts = self._read_truncated(texts, pairs)
            if pairs is not None and long_text.policy == "chunk":
                _refuse_long_pairs(encodings, self.max_length)
            windows = Windows(
                ids=[e.ids for e in encodings],
                type_ids=[e.type_ids for e in encodings],
                owners=np.arange(len(encodings)),
                starts=[0] * len(encodings),
                truncated=np.asarray(counts) > self.max_length,
                prefix=self.prefix,
                suffix=self.suffix,
            )
        else:
            encodings, windows = self._chunk(list(texts), long_text)
        if words:
            windows.read = [(len(e.ids), e.word_ids, e.offsets) for e in encodings]
        return windows

    def _chunk(self, texts: list[str], long_text: LongText) -> tuple[list, Windows]:
        width = self.max_length - self.prefix - self.suffix  # pieces per window
        stride = width // 4 if long_text.stride is None else long_text.stride
        if not 0 <= stride < width:
            raise InputError(f"stride must be in 0..{width - 1} (pieces shared by two windows), got {stride}.")
        span = (long_text.max_windows - 1) * (width - stride) + width  # pieces the windows can hold
        read = span + self.prefix + self.suffix  # tokens read per text
        encodings = self._encode_bounded(texts, (self._reader(read), read))
        windows = Windows([], [], np.zeros(0, np.int64), [], np.zeros(len(texts), bool), self.prefix, self.suffix)
        owners = []
        for text, e in enumerate(encodings):
            pieces = len(e.ids) - self.prefix - self.suffix
            starts = window_starts(pieces, width, stride, long_text.max_windows)
            head, tail = slice(0, self.prefix), slice(len(e.ids) - self.suffix, len(e.ids))
            for start in starts:
                body = slice(self.prefix + start, self.prefix + min(start + width, pieces))
                windows.ids.append(e.ids[head] + e.ids[body] + e.ids[tail])
                windows.type_ids.append(e.type_ids[head] + e.type_ids[body] + e.type_ids[tail])
            windows.starts += starts
            owners += [text] * len(starts)
            windows.truncated[text] = bool(e.overflowing) or starts[-1] + width < pieces
        windows.owners = np.asarray(owners, dtype=np.int64)
        return encodings, windows

    def _reader(self, tokens: int) -> Tokenizer:
        """A copy of the tokenizer that cuts at `tokens` instead of max_length (one per length, made once)."""
        with self._readers_lock:
            if tokens not in self._readers:
                reader = Tokenizer.from_str(self.tokenizer.to_str())
                reader.enable_truncation(tokens)
                self._readers[tokens] = reader
            return self._readers[tokens]

    def _encode_bounded(self, inputs: list, reader: tuple[Tokenizer, int] | None = None) -> list:
        """Encode with time and memory bounded by max_length, not by the input's size, and the same ids as
        encoding the whole text.

        The tokenizer would split a 10 MB text into every overflow piece (+1.4 GB, 17 s) to keep 128 tokens.
        Instead each long text is cut at a word boundary after `length * CHARS_PER_TOKEN` characters (`length`: the tokens kept, max_length or a chunking reader's); if the
        cut text still overflows max_length, the tokens kept come from whole words before the cut, so the ids are
        those of the full text (more than SPILL tokens past max_length, so a word cut in half at the end, at
        most 100 tokens, is never among the kept ones). If it does not (very long words, e.g. base64), the cut is
        widened and retried, at most MAX_WIDENINGS times (x8 each): a text whose first max_length * 1,024
        characters still give fewer tokens is one giant "word" (10 MB of "x", a data URI), which WordPiece turns
        into [UNK] whole or in part alike; its ids are those of the cut, and time and memory stay bounded.
        """
        tokenizer, length = reader or (self.tokenizer, self.max_length)  # reader: a tokenizer cutting at `length`
        limit = length * CHARS_PER_TOKEN
        encodings = self._encode_all(tokenizer, [_cut(x, limit) for x in inputs])
        retry = [i for i, x in enumerate(inputs) if _longer(x, limit) and not _spills(encodings[i])]
        for _ in range(MAX_WIDENINGS):
            if not retry:
                break
            limit *= 8
            again = self._encode_all(tokenizer, [_cut(inputs[i], limit) for i in retry])
            for i, encoding in zip(retry, again, strict=True):
                encodings[i] = encoding
            retry = [i for i in retry if _longer(inputs[i], limit) and not _spills(encodings[i])]
        return encodings

    @staticmethod
    def _encode_all(tokenizer: Tokenizer, inputs: list) -> list:
        try:
            return tokenizer.encode_batch(inputs)
        except TypeError:
            # Lone surrogates (e.g. from JSON "\ud800") are not valid Unicode and tokenizers rejects them.
            return tokenizer.encode_batch([valid_unicode(x) for x in inputs])

    def token_counts(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[int]:
        """Tokens each text (or text pair) has before truncation (capped: a count past max_length + SPILL is only
        'too long')."""
        return self.encode_counted(texts, pairs)[2]

    def encode_words(self, words: Sequence[Sequence[str]]) -> tuple[list, list, list]:
        """Ids, type ids and word ids for texts already split into words (token classification).

        Word ids map each token to its word's index (None for [CLS]/[SEP])."""
        encodings = self.tokenizer.encode_batch([list(w) for w in words], is_pretokenized=True)
        return [e.ids for e in encodings], [e.type_ids for e in encodings], [e.word_ids for e in encodings]

    def batches(self, ids: list[list[int]], type_ids: list[list[int]], batch_size: int) -> Iterator[Batch]:
        """Group rows of similar length so each batch pads only to its own longest row."""
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            width = max(1, int(lengths[chosen].max()))  # a tokenizer without [CLS]/[SEP] can yield 0 tokens
            input_ids = np.full((len(chosen), width), self.pad_id, dtype=np.int64)
            token_types = np.zeros((len(chosen), width), dtype=np.int64)
            mask = np.zeros((len(chosen), width), dtype=np.int64)
            for row, i in enumerate(chosen):
                n = lengths[i]
                input_ids[row, :n] = ids[i]
                token_types[row, :n] = type_ids[i]
                mask[row, :n] = 1
            yield Batch(chosen, input_ids, mask, token_types)


CHARS_PER_TOKEN = 16  # first cut; a WordPiece token rarely spans more than a few characters
MAX_WIDENINGS = 2  # the cut grows to at most max_length * 16 * 8**2 characters


SPILL = 128


def _refuse_long_pairs(encodings: list, max_length: int) -> None:
    for i, e in enumerate(encodings):
        if e.overflowing:
            raise InputError(
                f"Text pair {i} is longer than the model's {max_length} tokens, and pairs are not cut into windows "
                "(each window would need the whole pair). Shorten it, or use long_text='truncate'."
            )


def _spills(encoding) -> bool:
    return sum(len(piece.ids) for piece in encoding.overflowing) > SPILL


def _longer(item: str | tuple[str, str], limit: int) -> bool:
    return any(len(part) > limit for part in (item if isinstance(item, tuple) else (item,)))


def _cut(item: str | tuple[str, str], limit: int) -> str | tuple[str, str]:
    """Cut at a whitespace at or before `limit` (or at `limit` when there is none in the last 200 characters:
    such a word is longer than WordPiece's 100-character limit and becomes [UNK] whole or cut)."""
    if isinstance(item, tuple):
        return tuple(_cut(part, limit) for part in item)
    if len(item) <= limit:
        return item
    space = max(item.rfind(" ", limit - 200, limit + 1), item.rfind("\n", limit - 200, limit + 1))
    return item[: space if space > 0 else limit]
