"""A model directory someone else made is read, never trusted: before transformers or torch touch it, every file
in it must stay inside it, config.json must describe a model the weights can hold, and the weights must hold what
config.json says. Torch-free; each refusal is one line naming the file and the fix.

    check_input_directory(path, config, labels)   # called by read_checkpoint_meta for every checkpoint it reads
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..core.artifact import HF_CONFIG, TOKENIZER
from ..core.errors import ArtifactError
from ..core.files import resolves_inside

# The encoder families edgebert exports and tests (tests/test_hf_directory.py builds one of each).
MODEL_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "camembert", "electra", "albert")
# Size fields that decide what torch allocates, with limits far above any BERT-family classifier: a config asking
# for more (max_position_embeddings = 10**9 would make torch ask for 128 GB) is refused before anything loads.
SIZE_LIMITS = {
    "max_position_embeddings": 8192,
    "vocab_size": 1_000_000,
    "hidden_size": 4096,
    "dim": 4096,  # DistilBERT's names
    "num_hidden_layers": 64,
    "n_layers": 64,
    "intermediate_size": 16384,
    "hidden_dim": 16384,
    "embedding_size": 4096,  # ALBERT, ELECTRA
}
SAFETENSORS_HEADER_LIMIT = 100 << 20  # the JSON header of a real checkpoint is kilobytes


def check_input_directory(path: Path, config: dict, labels: list[str]) -> None:
    """After check_contained(path): what config.json asks torch to build is sane and is what the weights hold."""
    check_model_type(path, config)
    check_sizes(path, config)
    shapes = safetensors_shapes(path / "model.safetensors") if (path / "model.safetensors").is_file() else None
    if shapes is not None:
        check_shapes_match_config(path, config, labels, shapes)


def check_contained(path: Path) -> None:
    """Every entry of the directory resolves inside it: a link to a file elsewhere (a credentials file named
    special_tokens_map.json) would otherwise be read, hashed and shipped in the artifact. The one exception is the
    Hugging Face cache's own layout, snapshots/<rev>/<file> -> ../../blobs/<hash>, which stays inside the model's
    cache entry."""
    path = Path(path)
    allowed = [path.resolve()]
    if path.resolve().parent.name == "snapshots":
        allowed.append(path.resolve().parent.parent / "blobs")
    for entry in sorted(path.iterdir()):
        if not any(resolves_inside(entry, root) for root in allowed):
            raise ArtifactError(
                f"{entry} links outside {path} (to {entry.resolve()}); refusing to read it. Copy the file into the "
                "directory instead of linking it (cp -L)."
            )


def check_model_type(path: Path, config: dict) -> None:
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ArtifactError(
            f"{path / HF_CONFIG}: model_type {model_type!r} is not an encoder edgebert exports "
            f"({', '.join(MODEL_TYPES)}). Fine-tune one of those families."
        )


def check_sizes(path: Path, config: dict) -> None:
    for name, limit in SIZE_LIMITS.items():
        value = config.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise ArtifactError(
                f"{path / HF_CONFIG}: {name} = {value!r} is not a size between 1 and {limit}; the file is damaged or "
                "not a BERT-family classifier's. Re-save the model with save_pretrained."
            )


def safetensors_shapes(file: Path) -> dict[str, list[int]]:
    """{tensor name: shape} from a safetensors file's header (8-byte little-endian length, then JSON), after
    checking every tensor's bytes lie inside the file: a truncated download is refused here, in one line."""
    size = file.stat().st_size
    try:
        with file.open("rb") as f:
            (header_bytes,) = struct.unpack("<Q", f.read(8))
            if not 2 <= header_bytes <= min(SAFETENSORS_HEADER_LIMIT, size - 8):
                raise ValueError(f"header length {header_bytes} in a {size}-byte file")
            header = json.loads(f.read(header_bytes))
        shapes, data_bytes = {}, size - 8 - header_bytes
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            if not 0 <= begin <= end <= data_bytes:
                raise ValueError(f"tensor {name} ends at byte {end} of {data_bytes}")
            shapes[name] = [int(d) for d in entry["shape"]]
    except (struct.error, ValueError, KeyError, TypeError, AttributeError, RecursionError, UnicodeDecodeError) as exc:
        raise ArtifactError(
            f"{file} is truncated or not a safetensors file ({exc}). Download or save the model again."
        ) from None
    return shapes


def check_shapes_match_config(path: Path, config: dict, labels: list[str], shapes: dict[str, list[int]]) -> None:
    """The rows torch will build from config.json are the rows the weights hold, and the tokenizer's pieces all have
    a row: a tokenizer larger than the embedding table exports, then fails on the texts that use the extra pieces."""

    def rows(suffix: str) -> int | None:
        # by whole name parts: DistilBERT's pre_classifier.weight is not its classifier.weight
        matches = (shape for name, shape in shapes.items() if (name == suffix or name.endswith("." + suffix)) and shape)
        return next((shape[0] for shape in matches), None)

    expected = {
        "word_embeddings.weight": ("vocab_size", config.get("vocab_size")),
        "position_embeddings.weight": ("max_position_embeddings", config.get("max_position_embeddings")),
    }
    for suffix, (field, value) in expected.items():
        held = rows(suffix)
        if held is not None and value is not None and held != value:
            raise ArtifactError(
                f"{path / HF_CONFIG}: {field} = {value}, but model.safetensors holds {held} rows of {suffix}. "
                "Save config.json and the weights together (save_pretrained)."
            )
    head = next((rows(s) for s in ("classifier.out_proj.weight", "classifier.weight") if rows(s) is not None), None)
    if head is not None and head != len(labels):
        raise ArtifactError(
            f"{path / HF_CONFIG}: id2label names {len(labels)} labels, but the classifier in model.safetensors has "
            f"{head} outputs. Set id2label to one name per output."
        )
    pieces, embedding_rows = tokenizer_size(path), rows("word_embeddings.weight")
    if pieces is not None and embedding_rows is not None and pieces > embedding_rows:
        raise ArtifactError(
            f"{path / TOKENIZER} has {pieces} pieces but the model has {embedding_rows} embedding rows: texts using "
            "the extra pieces could not run. Save the tokenizer the model was trained with."
        )


def tokenizer_size(path: Path) -> int | None:
    """The tokenizer's highest piece id + 1 (its vocabulary and added tokens), or None when it cannot be read (the
    tokenizer's own load says why)."""
    try:
        data = json.loads((path / TOKENIZER).read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))  # WordPiece/BPE | Unigram
        ids += [token["id"] for token in data.get("added_tokens") or []]
        return max(int(i) for i in ids) + 1
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
