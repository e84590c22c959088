"""Compile for ONNX Runtime: transformer fusions on the fp32 graph (the OpenVINO path is openvino_ir.py)."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import FusionError, require

# The fusions that matter on CPU, and how many each BERT layer should get.
FUSIONS_PER_LAYER = {"Attention": 1, "SkipLayerNormalization": 2, "BiasGelu": 1}


def optimize_for_onnxruntime(onnx_path: Path, out_path: Path, *, num_heads: int, hidden_size: int) -> dict[str, int]:
    """Fuse attention, skip-layer-norm, bias-gelu and embed-layer-norm; return the fused-op counts.

    Uses ORT's offline transformer optimizer at opt_level 1 (portable fusions only: the hardware-
    specific level-2/99 rewrites are applied by the runtime session on the target CPU instead).
    """
    require("onnxruntime", "export")
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(onnx_path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1)
    counts = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    model.save_model_to_file(str(out_path))
    return counts


def check_fusions(counts: dict[str, int], num_layers: int) -> list[str]:
    """Names of the per-layer fusions that did not happen on every layer (empty when all did)."""
    return [op for op, per_layer in FUSIONS_PER_LAYER.items() if counts.get(op, 0) < per_layer * num_layers]


def require_attention_fusion(counts: dict[str, int], num_layers: int) -> None:
    fused = counts.get("Attention", 0)
    if fused < num_layers:
        raise FusionError(
            f"Attention was fused on {fused} of {num_layers} layers, so the INT8 model would run unfused "
            "attention (much slower). This usually means the model was exported with SDPA attention or an "
            "unsupported architecture. Pass --allow-unfused to export anyway."
        )
