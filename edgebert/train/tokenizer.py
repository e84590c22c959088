"""The training tokenizer: the encoder's tokenizer.json (extended with the data's characters when asked) and the
truncation length. Shared by `train` and `adapt`; torch-free."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..core.artifact import TOKENIZER
from ..core.errors import InputError
from ..modeling.pretrained import wants_vocab_extension
from .config import AdaptConfig, TrainConfig
from .vocab import extend_vocabulary, plain_tokenizer, unk_share

UNK_WARNING_SHARE = 0.05  # warn when more than this share of training tokens is [UNK]


def prepare_tokenizer(
    config: TrainConfig | AdaptConfig, model_dir: Path, texts: list[str], say
) -> tuple[str, list[str] | None]:
    """The encoder's tokenizer.json text, extended with the data's characters when asked (or hinted when needed)."""
    path = _tokenizer_json(model_dir)
    if config.extend_vocab or wants_vocab_extension(config.model):
        extension = extend_vocabulary(path, texts)
        say(
            f"vocabulary extended by {len(extension.added)} tokens; [UNK] share of training tokens "
            f"{extension.unk_share_before:.1%} -> {extension.unk_share_after:.2%}"
        )
        return extension.tokenizer_json, extension.vocab
    tokenizer_json = path.read_text(encoding="utf-8")
    share = unk_share(plain_tokenizer(tokenizer_json), texts[:2000])
    if share > UNK_WARNING_SHARE:
        say(
            f"warning: {share:.0%} of the training tokens are [UNK]: the encoder's vocabulary does not cover this "
            "text. Add --extend-vocab (or use --model minilm-l6-zh for Chinese)."
        )
    return tokenizer_json, None


def choose_max_length(config: TrainConfig, tokenizer, texts: list[str], model_dir: Path, say) -> int:
    """--max-length N, or 'auto': the 99th percentile of token counts, rounded up to a multiple of 8.
    `tokenizer` must not truncate (see vocab.plain_tokenizer)."""
    position_limit = encoder_positions(model_dir)
    lengths = np.asarray([len(e.ids) for e in tokenizer.encode_batch(texts)])
    if config.max_length == "auto":
        p99 = float(np.percentile(lengths, 99))
        max_length = int(min(position_limit, 512, max(8, math.ceil(p99 / 8) * 8)))
        say(f"--max-length auto: 99th percentile of training lengths is {p99:.0f} tokens -> {max_length}")
    else:
        max_length = int(config.max_length)
        if max_length > position_limit:
            raise InputError(f"--max-length {max_length} exceeds the encoder's {position_limit} positions.")
    truncated = int((lengths > max_length).sum())
    say(
        f"{truncated} of {len(lengths)} training texts ({truncated / len(lengths):.1%}) are truncated at {max_length} tokens"
    )
    return max_length


def encoder_positions(model_dir: Path) -> int:
    """How many token positions the encoder has (max_position_embeddings), the ceiling for --max-length."""
    return json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings", 512)


def _tokenizer_json(model_dir: Path) -> Path:
    """The model's fast-tokenizer file; converted from vocab files when a checkpoint lacks one."""
    path = model_dir / TOKENIZER
    if path.is_file():
        return path
    import tempfile

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    scratch = tempfile.TemporaryDirectory(prefix="edgebert-tok-")  # removed at exit (its finalizer)
    _SCRATCH.append(scratch)
    converted = Path(scratch.name) / TOKENIZER
    tokenizer.backend_tokenizer.save(str(converted))
    return converted


_SCRATCH: list = []  # keeps converted tokenizers alive until the process exits
