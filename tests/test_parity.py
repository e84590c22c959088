"""The exporter's parity check passes a faithful graph and raises ParityError on a tampered one."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgebert.core.errors import ParityError
from edgebert.export.onnx_export import check_parity, export_onnx
from edgebert.modeling.checkpoint import read_checkpoint_meta
from edgebert.modeling.models import TorchBackend
from edgebert.modeling.models import load_checkpoint_model as load_torch_classifier
from edgebert.runtime.model import batched_logits
from edgebert.runtime.tokenization import TextEncoder
from edgebert.tasks import SequenceTask, task_for

TASK: SequenceTask = task_for("sequence", ["business", "sports", "tech"])  # (three labels: the tiny checkpoint's)

TEXTS = ["goal for the team", "bank profit rises", "new phone chip", "", "a " * 60]


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory):
    model = load_torch_classifier(tiny_checkpoint)
    encoder = TextEncoder.from_file(
        tiny_checkpoint / "tokenizer.json", read_checkpoint_meta(tiny_checkpoint).max_length
    )
    ids, types = encoder.encode(TEXTS)
    reference = batched_logits(TorchBackend(model), encoder, ids, types, 2, 3)
    path = export_onnx(model, tmp_path_factory.mktemp("onnx"), opset=17, task=TASK)
    return path, encoder, ids, types, reference


def test_faithful_export_passes(exported):
    path, encoder, ids, types, reference = exported
    report = check_parity(reference, TASK.model_logits("onnxruntime", path, encoder, ids, types), 1e-4, stage="test")
    assert report["max_abs_logit_diff"] < 1e-4 and report["agreement"] == 1.0


def test_exported_graph_has_dynamic_batch_and_sequence_axes(exported):
    graph = onnx.load(str(exported[0])).graph
    for tensor in graph.input:
        dims = tensor.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch_size", "sequence_length"], tensor.name


def test_tampered_export_raises_typed_error(exported, tmp_path):
    path, encoder, ids, types, reference = exported
    model = onnx.load(str(path))
    target = next(t for t in model.graph.initializer if t.name.startswith("classifier") and t.name.endswith("bias"))
    target.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(target) + np.float32(0.5), target.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(model, str(tampered))
    with pytest.raises(ParityError) as info:
        check_parity(reference, TASK.model_logits("onnxruntime", tampered, encoder, ids, types), 1e-3, stage="test")
    assert info.value.max_abs_diff == pytest.approx(0.5, abs=1e-3)
    assert "max |Δlogit|" in str(info.value)


def test_nan_outputs_fail_parity():
    reference = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ParityError):
        check_parity(reference, np.full((2, 3), np.nan, dtype=np.float32), 1e-3, stage="test")
