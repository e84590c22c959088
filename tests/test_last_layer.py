"""The light last layer: [CLS]-only last encoder layer, same logits as the full model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgebert import Classifier
from edgebert.core.errors import ArtifactError, InputError
from edgebert.data.text import load_file
from edgebert.export.config import ExportConfig
from edgebert.export.pipeline import export_artifact
from edgebert.export.recipes import quantization_from_recipe

TEXTS = ["the team won the match", "shares fell on the market today after the results", "new phone chip", ""]


def test_cls_only_last_layer_matches_the_full_model_in_torch_with_padding(tiny_checkpoint):
    import torch

    from edgebert.modeling.last_layer import ClsOnlyLastLayer
    from edgebert.modeling.models import load_checkpoint_model

    model = load_checkpoint_model(tiny_checkpoint)
    ids = torch.randint(5, 60, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # padded rows: the mask must reach the light layer's attention too
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        light = ClsOnlyLastLayer(model)(ids, mask, types).logits
    torch.testing.assert_close(light, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_light_last_layer_export_passes_parity_and_keeps_fused_attention(
    tiny_checkpoint, tiny_artifact, data_dir, tmp_path, int8
):
    quantization = quantization_from_recipe("avx2") if int8 else None
    config = ExportConfig(light_last_layer=True, quantization=quantization)
    report = export_artifact(
        tiny_checkpoint, tmp_path / "light", config, eval_data=load_file(data_dir / "dev.jsonl"), progress=False
    )
    optimization = report.manifest.optimization
    assert optimization.last_layer == "cls_only"
    assert optimization.fusions["Attention"] == 1  # 2 layers: the first fused, the light one plain ops
    light = Classifier.load(tmp_path / "light").predict_proba(TEXTS)
    full = Classifier.load(tiny_artifact).predict_proba(TEXTS)
    np.testing.assert_allclose(light, full, atol=0.03 if int8 else 1e-4)
    if int8:
        assert report.manifest.evaluation.drift.agreement >= 0.9


def test_light_last_layer_is_refused_for_token_models(tiny_token_checkpoint, tmp_path):
    with pytest.raises(InputError, match="--light-last-layer applies to \\[CLS\\]-pooled sequence models"):
        export_artifact(tiny_token_checkpoint, tmp_path / "x", ExportConfig(light_last_layer=True), progress=False)
    assert not (tmp_path / "x").exists()


def test_manifest_claiming_a_light_last_layer_on_a_token_model_is_refused(token_int8_artifact, tmp_path):
    import shutil

    bundle = tmp_path / "lying"
    shutil.copytree(token_int8_artifact, bundle)
    manifest = json.loads((bundle / "edgebert.json").read_text())
    manifest["optimization"]["last_layer"] = "cls_only"
    (bundle / "edgebert.json").write_text(json.dumps(manifest))
    from edgebert.runtime.token_classifier import TokenClassifier

    with pytest.raises(ArtifactError, match="optimization.last_layer"):
        TokenClassifier.load(bundle)
