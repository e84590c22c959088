"""The conformance kit every artifact carries, `edgebert verify`, and the Node.js port that must pass it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.artifact import CONFORMANCE, MANIFEST
from edgebert.core.files import sha256_file

from .conftest import NODE_EXAMPLE, TRANSFORMERS_JS, node_kit, npm_example, save_tiny_bert


def _kit(artifact: Path) -> list[dict]:
    return [json.loads(line) for line in (artifact / CONFORMANCE).read_text().splitlines()]


def test_every_artifact_carries_at_least_1000_strings_with_their_ids(tiny_int8_artifact):
    rows = _kit(tiny_int8_artifact)
    texts = [r["text"] for r in rows]
    assert len(rows) >= 1000 and len(set(texts)) == len(texts)
    assert "" in texts and any("中" in t for t in texts) and any("😀" in t for t in texts)
    assert any("\u200b" in t for t in texts) and any("，" in t for t in texts) and any(len(t) > 5000 for t in texts)
    manifest = json.loads((tiny_int8_artifact / MANIFEST).read_text())
    assert manifest["files"][CONFORMANCE] == sha256_file(tiny_int8_artifact / CONFORMANCE)  # checksummed
    encoder = Classifier.load(tiny_int8_artifact).encoder
    assert encoder.encode(texts[:50])[0] == [r["ids"] for r in rows[:50]]


def test_verify_passes_a_good_artifact(tiny_int8_artifact, capsys):
    assert main(["verify", str(tiny_int8_artifact)]) == 0
    assert "give the recorded ids" in capsys.readouterr().out


def test_verify_names_strings_whose_ids_differ(tmp_path, tiny_int8_artifact, capsys):
    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_int8_artifact, artifact)
    rows = _kit(artifact)
    rows[7]["ids"] = rows[7]["ids"][:-1] + [0, rows[7]["ids"][-1]]  # as if another tokenizer gave one more id
    (artifact / CONFORMANCE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = json.loads((artifact / MANIFEST).read_text())
    manifest["files"][CONFORMANCE] = sha256_file(artifact / CONFORMANCE)
    (artifact / MANIFEST).write_text(json.dumps(manifest))
    assert main(["verify", str(artifact), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and [m["line"] for m in report["mismatches"]] == [8]


def test_verify_refuses_an_altered_kit(tmp_path, tiny_int8_artifact, capsys):
    artifact = tmp_path / "artifact"
    shutil.copytree(tiny_int8_artifact, artifact)
    with (artifact / CONFORMANCE).open("a") as f:
        f.write('{"text": "x", "ids": [1]}\n')
    assert main(["verify", str(artifact)]) == 2
    assert CONFORMANCE in capsys.readouterr().err


@pytest.fixture(scope="module")
def node_example() -> Path:
    return npm_example(NODE_EXAMPLE, "onnxruntime-node")


def test_node_port_passes_the_conformance_kit_and_golden_logits(node_example, tiny_int8_artifact):
    report = node_kit(node_example, tiny_int8_artifact)
    assert report["golden_max_abs_diff"] <= report["golden_atol"]


def test_node_classifies_like_python(node_example, tiny_int8_artifact):
    texts = ["goal for the team", "bank profit rises", "进球 ２０２６ café 😀"]
    result = subprocess.run(
        ["node", "edgebert.mjs", str(tiny_int8_artifact), *texts],
        cwd=node_example,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = Classifier.load(tiny_int8_artifact).predict(texts)
    assert [r["label"] for r in rows] == [p.label for p in expected]
    for row, prediction in zip(rows, expected, strict=True):
        assert row["scores"] == pytest.approx(prediction.scores, abs=1e-5)


@pytest.fixture(scope="module")
def unigram_artifact(tmp_path_factory, data_dir) -> Path:
    """A tiny random BERT (mean pooling, as e5 is used) that reads text with the real e5 SentencePiece tokenizer,
    trained briefly and exported INT8 with a trimmed vocabulary: the kit's Chinese, mixed, full-width and emoji
    strings go through Unigram."""

    from edgebert.core.errors import EdgebertError
    from edgebert.data.text import load_file
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe
    from edgebert.modeling.pretrained import ENCODERS
    from edgebert.train.config import TrainConfig
    from edgebert.train.loop import train

    try:
        tokenizer = ENCODERS["multilingual-e5-small"].tokenizer.locate("multilingual-e5-small")
    except EdgebertError as exc:
        pytest.skip(f"the e5 tokenizer's package is not installed (make install brings it): {exc}")
    root = tmp_path_factory.mktemp("unigram")
    vocab = len(json.loads(tokenizer.read_text(encoding="utf-8"))["model"]["vocab"])
    save_tiny_bert(root / "base", vocab, pad_token_id=1)
    shutil.copyfile(tokenizer, root / "base" / "tokenizer.json")
    train_set, dev = load_file(data_dir / "train.jsonl"), load_file(data_dir / "dev.jsonl")
    settings = dict(pooling="mean", max_length=48, epochs=1, batch_size=16, learning_rate=5e-3, freeze_embeddings=True)
    train(train_set, dev, TrainConfig(model=str(root / "base"), **settings), root / "ckpt", progress=False)
    export = ExportConfig(
        quantization=quantization_from_recipe("avx2"), trim_vocabulary=True, trim_keep_scripts=("cjk",)
    )
    export_artifact(root / "ckpt", root / "int8", export, eval_data=dev, coverage_data=[train_set], progress=False)
    return root / "int8"


def test_unigram_artifact_passes_its_kit_in_python(unigram_artifact, capsys):
    texts = [r["text"] for r in _kit(unigram_artifact)]
    assert any("中" in t for t in texts) and any("😀" in t for t in texts) and any("，" in t for t in texts)
    assert main(["verify", str(unigram_artifact)]) == 0


def test_node_port_passes_the_kit_on_a_unigram_artifact(node_example, unigram_artifact):
    node_kit(node_example, unigram_artifact)


def test_node_classifies_like_python_on_a_unigram_artifact(node_example, unigram_artifact):
    texts = ["质量很好，物流也快，推荐！", "中文English混合123", "ＡＢＣ１２３ 😀"]
    result = subprocess.run(
        ["node", "edgebert.mjs", str(unigram_artifact), *texts], cwd=node_example, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    expected = Classifier.load(unigram_artifact).predict(texts)
    assert [r["label"] for r in rows] == [p.label for p in expected]


def test_node_port_passes_the_kit_on_a_byte_level_bpe_artifact(node_example, bpe_artifact):
    tokenizer = json.loads((bpe_artifact / "tokenizer.json").read_text())
    assert (tokenizer["model"]["type"], tokenizer["pre_tokenizer"]["type"]) == ("BPE", "ByteLevel")
    assert main(["verify", str(bpe_artifact)]) == 0  # Python's own ids, then Node's
    report = node_kit(node_example, bpe_artifact)
    assert report["golden_max_abs_diff"] <= report["golden_atol"]


def test_the_wordpiece_ports_unicode_table_is_what_the_rust_library_generates(node_example):
    result = subprocess.run(
        [sys.executable, str(NODE_EXAMPLE / "rust_unicode_classes.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_transformers_js_opens_an_artifact_and_gives_the_same_labels(tiny_int8_artifact):
    """transformers.js (@huggingface/transformers in Node, local files only) loads the artifact as it is and agrees
    with the Python runtime: the same top label and scores within INT8 kernel differences."""
    npm_example(TRANSFORMERS_JS, "@huggingface/transformers")
    texts = ["the team won the cup final", "shares fell on the market", "a new phone chip", "进球"]
    result = subprocess.run(
        ["node", "classify.mjs", str(tiny_int8_artifact), *texts],
        cwd=TRANSFORMERS_JS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)
    expected = Classifier.load(tiny_int8_artifact).predict(texts)
    for answer, prediction in zip(answers, expected, strict=True):
        assert answer[0]["label"] == prediction.label
        scores = {row["label"]: row["score"] for row in answer}
        assert scores == pytest.approx(prediction.scores, abs=0.02)
