"""Vocabulary trimming (`train --trim-vocab`, `export --trim-vocab DATA`): keep only the embedding rows the model needs.

Why: multilingual-e5-small's 250,002 SentencePiece pieces are 96M embedding parameters beside a 21M-parameter
encoder; one app reads one or two languages. The kept pieces are
  - every piece the coverage texts produce (--trim-vocab DATA, plus --eval and --calib texts),
  - the special tokens (added tokens, unk, and those the post-processor inserts),
  - every single-character piece (`x`, `▁x` / `##x`), so unseen text still splits into known characters
    instead of <unk>,
  - with --trim-keep cjk, every piece made of CJK characters (17,186 in e5's vocabulary), so unseen Chinese
    text segments as the full vocabulary would more often (held-out zh_reviews: 95% vs 91% identical).
On zh_reviews train+dev, e5 keeps 23,634 pieces (26,966 with cjk) of 250,002.
Ids are renumbered in their old order; the tokenizer JSON and the embedding matrix are cut the same way.

Why this keeps covered texts' ids exactly (mapped to the new numbering): WordPiece picks the longest known
prefix at each step, and Unigram the best-scoring segmentation; the pieces a covered text used are all kept and
no new piece is added, so both pick the same pieces. `trim_vocabulary` checks it on the covered texts anyway.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError

TRIMMABLE_MODELS = ("Unigram", "WordPiece")
KEEP_RULE = "pieces of the coverage texts + special tokens + every single-character piece"
SCRIPTS = {  # --trim-keep NAME: keep every piece made only of these characters (and the word-start marks)
    "cjk": re.compile(r"(▁|##)?[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+"),
}
TRIM_SCRIPTS = tuple(SCRIPTS)  # the --trim-keep choices of train and export


@dataclass
class Trim:
    """Old ids kept, ascending: new id i is old id keep[i]."""

    keep: np.ndarray  # (V',) int64
    original_size: int

    def new_ids(self, old_ids: list[int]) -> list[int]:
        return [int(i) for i in np.searchsorted(self.keep, old_ids)]


def plan_trim(
    tokenizer_json: str, coverage: list, *, pretokenized: bool = False, keep_scripts: tuple[str, ...] = ()
) -> Trim:
    """Which pieces to keep: those the `coverage` texts (or word lists) produce, untruncated; special tokens;
    single characters; every piece of the `keep_scripts`."""
    from tokenizers import Tokenizer

    data = json.loads(tokenizer_json)
    kind = data["model"]["type"]
    if kind not in TRIMMABLE_MODELS:
        raise InputError(
            f"--trim-vocab supports {' and '.join(TRIMMABLE_MODELS)} tokenizers; this one is {kind}. "
            "Export without --trim-vocab."
        )
    pieces = _pieces(data["model"])
    keep = set(_special_ids(data, pieces))
    keep |= {i for i, piece in enumerate(pieces) if len(piece.removeprefix("▁").removeprefix("##")) == 1}
    for script in keep_scripts:
        keep |= {i for i, piece in enumerate(pieces) if SCRIPTS[script].fullmatch(piece)}
    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    for encoding in tokenizer.encode_batch(coverage, is_pretokenized=pretokenized, add_special_tokens=True):
        keep.update(encoding.ids)
    return Trim(np.asarray(sorted(keep), dtype=np.int64), len(pieces))


def trim_tokenizer(tokenizer_json: str, trim: Trim) -> str:
    """The tokenizer JSON with only the kept pieces, renumbered; every id it mentions mapped."""
    data = json.loads(tokenizer_json)
    model, kept = data["model"], set(trim.keep.tolist())
    if model["type"] == "Unigram":
        model["vocab"] = [model["vocab"][i] for i in trim.keep]
        if model.get("unk_id") is not None:
            model["unk_id"] = trim.new_ids([model["unk_id"]])[0]
    else:  # WordPiece: piece -> id
        model["vocab"] = {piece: trim.new_ids([i])[0] for piece, i in model["vocab"].items() if i in kept}
    for token in data.get("added_tokens") or []:
        token["id"] = trim.new_ids([token["id"]])[0]
    _map_processor_ids(data.get("post_processor"), trim)
    if data.get("padding"):
        data["padding"]["pad_id"] = trim.new_ids([data["padding"]["pad_id"]])[0]
    return json.dumps(data, ensure_ascii=False)


def trim_embeddings(model, trim: Trim) -> None:
    """Cut the classifier's word-embedding matrix (V, H) to the kept rows (V', H), in place."""
    import torch

    embeddings = model.get_input_embeddings()
    rows = embeddings.weight.shape[0]
    if int(trim.keep[-1]) >= rows:
        raise InputError(f"The tokenizer has piece ids up to {int(trim.keep[-1])} but the model only {rows} rows.")
    with torch.no_grad():  # in place: any model with get_input_embeddings (HF heads, the mean-pool head) works
        embeddings.weight = torch.nn.Parameter(embeddings.weight[torch.from_numpy(trim.keep)].clone())
    embeddings.num_embeddings = len(trim.keep)
    config = getattr(model, "config", None)
    if config is not None:
        config.vocab_size = len(trim.keep)
        pad = getattr(config, "pad_token_id", None)
        config.pad_token_id = trim.new_ids([pad])[0] if pad is not None and pad in set(trim.keep.tolist()) else None
    if embeddings.padding_idx is not None:  # the pad row is only special for training; inference reads it as is
        embeddings.padding_idx = None


def _pieces(model: dict[str, Any]) -> list[str]:
    if model["type"] == "Unigram":
        return [piece for piece, _score in model["vocab"]]
    by_id = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise InputError("This WordPiece vocabulary's ids are not 0..N-1; export without --trim-vocab.")
    return [piece for piece, _ in by_id]


def _special_ids(data: dict[str, Any], pieces: list[str]) -> list[int]:
    ids = [token["id"] for token in data.get("added_tokens") or []]
    model = data["model"]
    if model.get("unk_id") is not None:
        ids.append(model["unk_id"])
    if model.get("unk_token") in pieces:
        ids.append(pieces.index(model["unk_token"]))
    ids += _processor_ids(data.get("post_processor"))
    return ids


def _processor_ids(processor: dict[str, Any] | None) -> list[int]:
    if not processor:
        return []
    if processor["type"] == "Sequence":
        return [i for p in processor["processors"] for i in _processor_ids(p)]
    if processor["type"] == "TemplateProcessing":
        return [i for token in processor["special_tokens"].values() for i in token["ids"]]
    return [processor[key][1] for key in ("cls", "sep") if key in processor]  # BertProcessing, RobertaProcessing


def _map_processor_ids(processor: dict[str, Any] | None, trim: Trim) -> None:
    if not processor:
        return
    if processor["type"] == "Sequence":
        for inner in processor["processors"]:
            _map_processor_ids(inner, trim)
    elif processor["type"] == "TemplateProcessing":
        for token in processor["special_tokens"].values():
            token["ids"] = trim.new_ids(token["ids"])
    else:
        for key in ("cls", "sep"):
            if key in processor:
                processor[key][1] = trim.new_ids([processor[key][1]])[0]
