"""`edgebert publish`: one folder that edgebert, transformers.js (default options) and optimum-intel all open."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from edgebert import Classifier
from edgebert.cli import main

from .conftest import TRANSFORMERS_JS, npm_example


def test_a_published_int8_artifact_keeps_its_files_and_adds_the_hub_names(tiny_int8_artifact, tmp_path, capsys):
    out = tmp_path / "pub"
    assert main(["publish", str(tiny_int8_artifact), "--out", str(out)]) == 0
    model = (tiny_int8_artifact / "model.onnx").read_bytes()
    assert (out / "onnx" / "model.onnx").read_bytes() == model == (out / "onnx" / "model_quantized.onnx").read_bytes()
    assert (out / "README.md").is_file() and (out / "config.json").is_file()
    assert main(["verify", str(out)]) == 0  # still an edgebert artifact, checksums and kit intact
    texts = ["the team won the cup final", "shares fell on the market"]
    assert np.array_equal(
        Classifier.load(out).predict_logits(texts), Classifier.load(tiny_int8_artifact).predict_logits(texts)
    )
    assert main(["publish", str(tiny_int8_artifact), "--out", str(out)]) == 2  # no overwrite without --force
    assert "--force" in capsys.readouterr().err


def test_publish_refuses_an_altered_artifact(tiny_int8_artifact, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_int8_artifact, copy)
    with (copy / "model.onnx").open("ab") as f:
        f.write(b"\0")
    assert main(["publish", str(copy), "--out", str(tmp_path / "pub")]) == 2
    assert "checksum" in capsys.readouterr().err and not (tmp_path / "pub").exists()


def test_transformers_js_opens_a_published_folder_with_its_default_options(tiny_int8_artifact, tmp_path):
    npm_example(TRANSFORMERS_JS, "@huggingface/transformers")
    out = tmp_path / "pub"
    assert main(["publish", str(tiny_int8_artifact), "--out", str(out)]) == 0
    texts = ["the team won the cup final", "shares fell on the market", "a new phone chip"]
    done = subprocess.run(
        ["node", "classify.mjs", str(out), *texts], cwd=TRANSFORMERS_JS, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = Classifier.load(out).predict(texts)
    for answer, prediction in zip(json.loads(done.stdout), expected, strict=True):
        assert {row["label"]: row["score"] for row in answer} == pytest.approx(prediction.scores, abs=0.02)


def test_optimum_intel_opens_a_published_openvino_artifact(tiny_checkpoint, data_dir, tmp_path):
    pytest.importorskip("optimum.intel")
    from optimum.intel import OVModelForSequenceClassification
    from transformers import AutoTokenizer

    ov, out = tmp_path / "ov", tmp_path / "pub"
    calib = str(data_dir / "train.jsonl")
    assert (
        main(
            [
                "export",
                str(tiny_checkpoint),
                "--out",
                str(ov),
                "--backend",
                "openvino",
                "--int8",
                "--calib",
                calib,
                "--quiet",
            ]
        )
        == 0
    )
    assert main(["publish", str(ov), "--out", str(out)]) == 0
    model = OVModelForSequenceClassification.from_pretrained(out, local_files_only=True)
    texts = ["the team won the cup final", "shares fell on the market"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    theirs = np.concatenate([model(**tokenizer([t], return_tensors="pt")).logits.numpy() for t in texts])
    ours = Classifier.load(out).predict_logits(texts)
    assert np.max(np.abs(theirs - ours)) < 0.01  # optimum-intel may run OpenVINO in bf16 on this CPU
