"""INT8 quantization with ONNX Runtime's tools, configured by a `QuantizationConfig`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .config import QuantizationConfig
from .errors import require


def quantize_dynamic_int8(model_path: Path, out_path: Path, config: QuantizationConfig) -> None:
    """Weights to INT8 ahead of time; activations quantized per batch at run time (no calibration)."""
    onnx = require("onnx", "export")
    require("onnxruntime", "export")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _cwd(Path(out_path).parent):  # ORT's quantization tools drop temp files into the cwd
        quantize_dynamic(
            str(model_path),
            str(out_path),
            weight_type=QuantType.QInt8 if config.weight_type == "qint8" else QuantType.QUInt8,
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            op_types_to_quantize=config.op_types,
            nodes_to_exclude=config.exclude_nodes,
            # ORT 1.32 cannot infer tensor types inside fused graphs (Attention, SkipLayerNorm) without this.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextlib.contextmanager
def _cwd(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
