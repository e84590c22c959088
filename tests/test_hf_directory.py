"""`edgebert export HF_DIR`: any local Hugging Face classifier directory (not trained by edgebert) exports like a
checkpoint. Tiny random models of six architectures, saved with `save_pretrained` as transformers does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgebert import Classifier, TokenClassifier
from edgebert.cli import main
from edgebert.core.artifact import read_manifest
from edgebert.core.errors import ArtifactError
from edgebert.data.text import load_file
from edgebert.export.config import ExportConfig
from edgebert.export.pipeline import export_artifact
from edgebert.export.recipes import quantization_from_recipe
from edgebert.modeling.checkpoint import read_checkpoint_meta

from .conftest import HF_ARCHITECTURES, HF_LABELS, save_hf_classifier


@pytest.mark.parametrize("architecture", list(HF_ARCHITECTURES))
def test_hf_directory_exports_with_parity_and_int8_drift(tmp_path, tiny_base, data_dir, architecture):
    import torch
    import transformers

    hf_dir = save_hf_classifier(tmp_path / architecture, architecture, tiny_base)
    meta = read_checkpoint_meta(hf_dir)
    assert (meta.task, meta.labels, meta.max_length) == ("sequence", HF_LABELS, 128)
    dev = load_file(data_dir / "dev.jsonl")
    dev = type(dev)(dev.texts, [HF_LABELS[i % 3] for i in range(len(dev))], dev.source)  # this model's labels
    config = ExportConfig(quantization=quantization_from_recipe("avx2"))
    report = export_artifact(hf_dir, tmp_path / "int8", config, eval_data=dev, progress=False)
    assert report.parity["max_abs_logit_diff"] <= 1e-3  # torch -> ONNX (and fusion, where it happened)
    manifest = read_manifest(report.out)
    assert manifest.evaluation.drift is not None and manifest.labels == HF_LABELS
    if not manifest.optimization.fusions.get("Attention"):
        assert "exported unfused" in manifest.optimization.note  # said, not failed
    fp32 = export_artifact(hf_dir, tmp_path / "fp32", ExportConfig(), progress=False)
    model = getattr(transformers, HF_ARCHITECTURES[architecture][1]).from_pretrained(hf_dir).eval()
    texts = dev.texts[:5]
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(hf_dir / "tokenizer.json"), pad_token="[PAD]")
    encoded = tokenizer(texts, padding=True, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        expected = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits.numpy()
    np.testing.assert_allclose(Classifier.load(fp32.out).predict_logits(texts), expected, atol=1e-4)


def test_token_classification_directory(tmp_path, tiny_base, token_data_dir):
    from edgebert.data.tokens import load_token_file

    hf_dir = save_hf_classifier(tmp_path / "ner", "bert", tiny_base, head="BertForTokenClassification")
    config = json.loads((hf_dir / "config.json").read_text())
    tags = ["O", "B-PER", "I-PER"]
    config.update(id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
    (hf_dir / "config.json").write_text(json.dumps(config))
    assert read_checkpoint_meta(hf_dir).task == "token"
    dev = load_token_file(token_data_dir / "dev.jsonl")
    dev = type(dev)(dev.words, [["O"] * len(w) for w in dev.words], dev.source)
    report = export_artifact(hf_dir, tmp_path / "art", ExportConfig(), eval_data=dev, progress=False)
    assert TokenClassifier.load(report.out).labels == tags


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no-head", "no sequence- or token-classification head"),
        ("no-labels", "id2label"),
        ("no-tokenizer", "save the fast tokenizer"),
        ("no-weights", "has no weights"),
        ("no-config", "neither an edgebert checkpoint"),
    ],
)
def test_a_directory_that_is_not_a_classifier_gets_one_clear_error(tmp_path, tiny_base, damage, message, capsys):
    hf_dir = save_hf_classifier(tmp_path / "m", "bert", tiny_base)
    config = json.loads((hf_dir / "config.json").read_text())
    if damage == "no-head":
        config["architectures"] = ["BertModel"]
    elif damage == "no-labels":
        config.pop("id2label")
    (hf_dir / "config.json").write_text(json.dumps(config))
    if damage == "no-tokenizer":
        (hf_dir / "tokenizer.json").unlink()
    elif damage == "no-weights":
        (hf_dir / "model.safetensors").unlink()
    elif damage == "no-config":
        (hf_dir / "config.json").unlink()
    with pytest.raises(ArtifactError, match=message):
        read_checkpoint_meta(hf_dir)
    assert main(["export", str(hf_dir), "--out", str(tmp_path / "out")]) == 2
    assert message.split()[0] in capsys.readouterr().err


def test_optimum_opens_an_edgebert_artifact(tmp_path, tiny_checkpoint, data_dir):
    """The artifact carries config.json (and the tokenizer's companions), so Optimum's ORTModel opens it as is."""
    pytest.importorskip("optimum.onnxruntime")
    import transformers
    from optimum.onnxruntime import ORTModelForSequenceClassification

    report = export_artifact(tiny_checkpoint, tmp_path / "art", ExportConfig(), progress=False)
    model = ORTModelForSequenceClassification.from_pretrained(report.out, file_name="model.onnx")
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(report.out / "tokenizer.json"))
    texts = ["goal for the team", "bank profit rises"]
    ours = Classifier.load(report.out).predict_logits(texts)
    theirs = np.concatenate([model(**tokenizer([t], return_tensors="pt")).logits.detach().numpy() for t in texts])
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    assert model.config.id2label == dict(enumerate(Classifier.load(report.out).labels))


def test_distill_takes_a_hugging_face_directory_as_the_teacher(tmp_path, tiny_base, data_dir):
    from edgebert.modeling.checkpoint import read_checkpoint_meta

    teacher = save_hf_classifier(tmp_path / "teacher", "bert", tiny_base)
    student = tmp_path / "student"
    for split in ("train", "dev"):  # the teacher's label names (HF_LABELS): 'sport', not the fixture's 'sports'
        text = (data_dir / f"{split}.jsonl").read_text().replace('"sports"', '"sport"')
        (tmp_path / f"{split}.jsonl").write_text(text)
    args = ["distill", str(teacher), "--layers", "1", "--data", str(tmp_path / "train.jsonl")]
    args += ["--eval", str(tmp_path / "dev.jsonl"), "--out", str(student), "--epochs", "1", "--quiet"]
    assert main(args) == 0
    meta = read_checkpoint_meta(student)
    assert meta.labels == read_checkpoint_meta(teacher).labels and meta.task == "sequence"
    assert main(["export", str(student), "--out", str(tmp_path / "a"), "--int8", "--quiet"]) == 0
