"""Extend a WordPiece vocabulary with the characters a dataset needs. Torch-free.

No registry package ships Chinese BERT weights (see README), so Chinese text through the English
MiniLM would be mostly [UNK]. The fix used here: append every character that tokenizes to [UNK]
in the training texts (seen at least `min_count` times) to the WordPiece vocabulary, as a word
("好") and as a continuation piece ("##好"), and give the encoder new embedding rows for them
(see `modeling.resize_embeddings`). The normalizer and pre-tokenizer are unchanged, so BERT's
one-token-per-CJK-character split still applies and the runtime needs nothing new.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from ..core.errors import InputError


@dataclass
class VocabExtension:
    tokenizer_json: str  # the extended tokenizer, serialized
    vocab: list[str]  # every token by id, for vocab.txt
    added: list[str]  # new tokens, in id order
    unk_share_before: float  # share of training tokens that were [UNK]
    unk_share_after: float

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def plain_tokenizer(tokenizer_json: str) -> Tokenizer:
    """A tokenizer from its JSON text without the fixed padding/truncation some tokenizer.json files carry."""
    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def unk_share(tokenizer: Tokenizer, texts: Sequence[str]) -> float:
    """Fraction of (non-special) tokens that are the unknown token ([UNK] in WordPiece, <unk> in SentencePiece)."""
    unk = next((i for i in map(tokenizer.token_to_id, ("[UNK]", "<unk>")) if i is not None), None)
    if unk is None:
        return 0.0
    return _unk_share(tokenizer.encode_batch(list(texts), add_special_tokens=False), unk)


def _unk_share(encodings: list, unk: int) -> float:
    total = sum(len(e.ids) for e in encodings)
    hits = sum(1 for e in encodings for i in e.ids if i == unk)
    return hits / total if total else 0.0


def extend_vocabulary(tokenizer_file: Path, texts: Sequence[str], *, min_count: int = 2) -> VocabExtension:
    """Add the characters that are [UNK] in `texts` to the tokenizer's WordPiece vocabulary."""
    data = json.loads(Path(tokenizer_file).read_text(encoding="utf-8"))
    model = data.get("model", {})
    if model.get("type") != "WordPiece":
        raise InputError(
            f"--extend-vocab supports WordPiece (BERT) tokenizers; {tokenizer_file} uses {model.get('type')}."
        )
    tokenizer = plain_tokenizer(json.dumps(data))
    unk = _unk_id(tokenizer)
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    counts: Counter[str] = Counter()
    for text, encoding in zip(texts, encodings, strict=True):
        for token_id, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            if token_id == unk:
                # the normalizer lowercases; [UNK] spans a whole pre-tokenized word
                counts.update(ch for ch in text[start:end].lower() if not ch.isspace())
    vocab: dict[str, int] = model["vocab"]
    added = []
    for char, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if count < min_count or unicodedata.category(char).startswith("C"):  # control/format chars are stripped
            continue
        # CJK characters are always split into one-character words; anything else can also end a word
        pieces = (char,) if _is_cjk(char) else (char, f"##{char}")
        for piece in pieces:
            if piece not in vocab:
                vocab[piece] = len(vocab)
                added.append(piece)
    ordered = sorted(vocab, key=vocab.__getitem__)
    if [vocab[t] for t in ordered] != list(range(len(ordered))):
        raise InputError(f"{tokenizer_file}: WordPiece ids are not contiguous; cannot extend this vocabulary.")
    return VocabExtension(
        tokenizer_json=json.dumps(data, ensure_ascii=False),
        vocab=ordered,
        added=added,
        unk_share_before=_unk_share(encodings, unk),
        unk_share_after=unk_share(plain_tokenizer(json.dumps(data)), texts),
    )


# BERT's BasicTokenizer._is_chinese_char ranges (the normalizer's handle_chinese_chars uses the same)
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_cjk(char: str) -> bool:
    return any(lo <= ord(char) <= hi for lo, hi in _CJK_RANGES)


def _unk_id(tokenizer: Tokenizer) -> int:
    unk = tokenizer.token_to_id("[UNK]")
    if unk is None:
        raise InputError("The tokenizer has no [UNK] token; vocabulary extension needs a BERT WordPiece tokenizer.")
    return unk
