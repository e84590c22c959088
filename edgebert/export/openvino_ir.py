"""Compile for OpenVINO: ONNX -> OpenVINO IR (model.xml + model.bin), fp32 or INT8 through NNCF.

Takes the plain (unfused) ONNX export: OpenVINO applies its own transformer fusions at compile time and
does not read ONNX Runtime's contrib ops. The runtime then needs only the `openvino` package.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from ..core.errors import require
from .quantize import Feed, QuantUnit

# The pooler and classifier decide the argmax directly and cost almost nothing: always fp32.
ALWAYS_FP32 = (r".*/pooler/.*", r".*/classifier/.*")


def convert_to_ir(
    onnx_path: Path,
    out_xml: Path,
    *,
    calibration: Iterable[Feed] | None = None,
    calibration_size: int = 200,
    fp32_units: Iterable[str] = (),
    progress: bool = True,
) -> None:
    """Write `out_xml` (+ .bin). With `calibration`, quantize to INT8 with NNCF post-training quantization
    for transformers (SmoothQuant + fast bias correction), keeping `fp32_units` (layer names) in fp32."""
    ov = require("openvino", "openvino")
    model = ov.convert_model(str(onnx_path))
    if calibration is not None:
        nncf = require("nncf", "openvino")
        patterns = list(ALWAYS_FP32) + [unit_pattern(name) for name in fp32_units]
        feeds = list(calibration)
        # NNCF draws its progress bars on stdout (where the export summary goes) and logs every node it skips
        # at INFO: bars go to stderr (or nowhere without progress), the node list is not the user's business.
        nncf_logger, level = logging.getLogger("nncf"), logging.getLogger("nncf").level
        nncf_logger.setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(sys.stderr if progress else io.StringIO()):
                model = nncf.quantize(
                    model,
                    nncf.Dataset(feeds),
                    model_type=nncf.ModelType.TRANSFORMER,
                    subset_size=min(calibration_size, len(feeds)),
                    ignored_scope=nncf.IgnoredScope(patterns=patterns, validate=False),
                )
        finally:
            nncf_logger.setLevel(level)
    # Keep fp32 weights: fp16 compression would change the logits the golden sample checks.
    ov.save_model(model, str(out_xml), compress_to_fp16=False)


def openvino_units(onnx_path: Path) -> list[QuantUnit]:
    """Encoder layers of the unfused graph, found from the exporter's node names (`/bert/encoder/layer.3/...`)."""
    onnx = require("onnx", "export")
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    layers: dict[str, list[str]] = {}
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm") and (match := re.search(r"/layer\.(\d+)/", node.name)):
            layers.setdefault(f"layer.{match.group(1)}", []).append(node.name)
    return [QuantUnit(name, tuple(nodes)) for name, nodes in layers.items()]


def unit_pattern(name: str) -> str:
    return rf".*/{re.escape(name)}/.*"
