"""The stages `export_artifact` is made of (export/pipeline.py), each on its own, on a tiny trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgebert.core.artifact import read_manifest, verify_files
from edgebert.core.errors import InputError, ParityError
from edgebert.data.text import TextDataset, load_file
from edgebert.export import pipeline
from edgebert.export.builder import ModelBuilder
from edgebert.export.config import ExportConfig
from edgebert.export.recipes import quantization_from_recipe


def _say(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def dev(data_dir) -> TextDataset:
    return load_file(data_dir / "dev.jsonl")


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    from edgebert.modeling.models import load_checkpoint_model

    return load_checkpoint_model(tiny_checkpoint)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, tiny_checkpoint, model, dev):
    """(inputs, the raw ONNX graph, the fused graph) of the tiny checkpoint, with dev as --eval."""
    work = tmp_path_factory.mktemp("stages")
    config = ExportConfig()
    inputs = pipeline.load_inputs(tiny_checkpoint, config, dev, None)
    raw = pipeline.export_graph(model, inputs, config, work, _say)
    return inputs, raw, pipeline.fuse_graph(model, raw, inputs, config, work, _say)


def test_load_inputs_reads_the_checkpoint_and_encodes_eval_once(tiny_checkpoint, dev):
    inputs = pipeline.load_inputs(tiny_checkpoint, ExportConfig(), dev, None)
    assert inputs.task.name == "sequence" and list(inputs.task.labels.names) == inputs.meta.labels
    assert len(inputs.encoded_eval.ids) == len(dev) and inputs.encoder.max_length == inputs.meta.max_length


@pytest.mark.parametrize(
    "config, eval_set, calib, message",
    [
        (dict(quantization="avx2", max_drop_points=0.5), False, False, "add --eval"),
        (dict(quantization="avx2", mode="static"), True, False, "needs calibration texts"),
        (dict(quantization="avx2"), True, True, "only used by static INT8"),
    ],
)
def test_load_inputs_refuses_options_the_stages_cannot_honour(tiny_checkpoint, dev, config, eval_set, calib, message):
    quantization = quantization_from_recipe(config["quantization"]).with_options(mode=config.get("mode"))
    config = {**{k: v for k, v in config.items() if k != "mode"}, "quantization": quantization}
    with pytest.raises(InputError, match=message):
        pipeline.load_inputs(tiny_checkpoint, ExportConfig(**config), dev if eval_set else None, dev if calib else None)


def test_export_graph_reproduces_torch_and_refuses_a_graph_that_does_not(tmp_path, graphs, model):
    inputs, raw, _ = graphs
    assert raw.path.is_file() and raw.parity["max_abs_logit_diff"] <= 1e-3 and raw.fusable_layers == 2
    with pytest.raises(ParityError, match="ONNX export"):  # a tolerance no float graph meets
        pipeline.export_graph(model, inputs, ExportConfig(parity_atol=0.0), tmp_path, _say)


def test_fuse_graph_fuses_attention_on_every_layer_and_keeps_parity(graphs):
    _, raw, fused = graphs
    assert fused.path != raw.path and fused.fusions.get("Attention", 0) == raw.fusable_layers
    np.testing.assert_array_equal(fused.torch_logits, raw.torch_logits)  # checked against the same reference


def test_fuse_graph_is_skipped_for_openvino(graphs, model, tmp_path):
    inputs, raw, _ = graphs
    assert pipeline.fuse_graph(model, raw, inputs, ExportConfig(backend="openvino"), tmp_path, _say) is raw


def test_quantize_graph_builds_int8_and_returns_the_fp32_reference(tmp_path, graphs):
    inputs, _, fused = graphs
    config = ExportConfig(quantization=quantization_from_recipe("avx2"))
    builder = ModelBuilder(config, fused.path, tmp_path, [], [], progress=False)
    built, budget, fp32_eval = pipeline.quantize_graph(builder, fused, inputs, config, _say)
    assert built != fused.path and built.stat().st_size < fused.path.stat().st_size / 2
    assert budget is None and fp32_eval.shape == (len(inputs.encoded_eval.ids), len(inputs.task.labels.names))
    (tmp_path / "fp32").mkdir()
    fp32 = ModelBuilder(ExportConfig(), fused.path, tmp_path / "fp32", [], [], progress=False)
    assert pipeline.quantize_graph(fp32, fused, inputs, ExportConfig(), _say) == (fused.path, None, None)


def test_evaluate_saved_scores_the_saved_model_and_skips_without_eval(graphs, tiny_checkpoint):
    inputs, _, fused = graphs
    evaluation = pipeline.evaluate_saved(fused.path, fused, None, inputs, ExportConfig(), _say)
    assert evaluation.data == inputs.eval_data.source and 0 <= evaluation.metrics["accuracy"] <= 1
    no_eval = pipeline.load_inputs(tiny_checkpoint, ExportConfig(), None, None)
    assert pipeline.evaluate_saved(fused.path, fused, None, no_eval, ExportConfig(), _say) is None


def test_write_bundle_writes_a_manifest_the_runtime_accepts(tmp_path, graphs, tiny_checkpoint):
    import shutil

    from edgebert import Classifier

    inputs, _, fused = graphs
    staging = tmp_path / "artifact"
    staging.mkdir()
    shutil.copyfile(fused.path, staging / "model.onnx")
    shutil.copyfile(Path(tiny_checkpoint) / "tokenizer.json", staging / "tokenizer.json")
    manifest = pipeline.write_bundle(staging, ["model.onnx"], fused, None, (None, None), inputs, ExportConfig())
    assert read_manifest(staging) == manifest and manifest.golden is not None
    verify_files(staging, manifest)
    assert Classifier.load(staging).labels == inputs.meta.labels  # golden replay included
