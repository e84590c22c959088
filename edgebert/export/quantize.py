"""INT8 quantization of an ONNX graph with ONNX Runtime's tools, configured by a `QuantizationConfig`.

Dynamic: weights to INT8 ahead of time, activations quantized per call (no calibration data).
Static:  activations of the dense MatMuls get fixed scales from calibration texts (QDQ format); the
         fused Attention ops are quantized dynamically, because ORT has no static QDQ kernel for them.

What stays fp32 in static mode, and why:
  - the softmax-adjacent attention MatMuls (QKᵀ and probs·V): they live inside the fused Attention op,
    whose INT8 kernel quantizes only the QKV projection; softmax inputs span a range that a fixed
    8-bit scale cannot cover without crushing the small logits that decide attention;
  - the embeddings (a table lookup: INT8 saves size, not time, and static scales add error);
  - the pooler and classifier head (tiny, and they decide the argmax directly).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError, require
from .config import QuantizationConfig

Feed = dict[str, np.ndarray]
STATIC_OP_TYPES = ("MatMul",)  # quantized with calibrated activation scales (QDQ)


@dataclass(frozen=True)
class QuantUnit:
    """A group of quantizable nodes the accuracy budget can return to fp32 together (one encoder layer)."""

    name: str  # "embeddings", "layer.0", ..., "head"
    nodes: tuple[str, ...]


def quantizable_units(model_path: Path, op_types: Iterable[str], *, per_node: bool = False) -> list[QuantUnit]:
    """Group the graph's quantizable nodes by encoder layer, walking it in topological order.

    Each fused Attention node opens a layer; nodes after the last SkipLayerNormalization belong to the head.
    Works on fused graphs, whose node names do not carry the layer index. With per_node, every node is its
    own unit, named "layer.N:<node name within the layer>".
    """
    onnx = require("onnx", "export")
    graph = onnx.load(str(model_path), load_external_data=False).graph
    op_types = set(op_types)
    last_norm = max((i for i, n in enumerate(graph.node) if n.op_type == "SkipLayerNormalization"), default=-1)
    groups: dict[str, list[str]] = {}
    current = "embeddings"
    layer = -1
    for index, node in enumerate(graph.node):
        if node.op_type == "Attention":
            layer += 1
            current = f"layer.{layer}"
        if last_norm >= 0 and index > last_norm:
            current = "head"
        if node.op_type in op_types:
            key = f"{current}:{node.name.rpartition(current + '/')[2]}" if per_node else current
            groups.setdefault(key, []).append(node.name)
    return [QuantUnit(name, tuple(nodes)) for name, nodes in groups.items()]


def head_nodes(model_path: Path) -> list[str]:
    units = quantizable_units(model_path, ("MatMul", "Gemm"))
    return [node for unit in units if unit.name == "head" for node in unit.nodes]


def quantize_dynamic_int8(model_path: Path, out_path: Path, config: QuantizationConfig) -> None:
    onnx = require("onnx", "export")
    require("onnxruntime", "export")
    from onnxruntime.quantization import quantize_dynamic

    with _cwd(Path(out_path).parent), _no_preprocessing_advice():  # ORT's tools drop temp files into the cwd
        quantize_dynamic(
            str(model_path),
            str(out_path),
            weight_type=_weight_type(config),
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            op_types_to_quantize=config.op_types,
            nodes_to_exclude=config.exclude_nodes,
            # ORT 1.32 cannot infer tensor types inside fused graphs (Attention, SkipLayerNorm) without this.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def quantize_static_int8(
    model_path: Path, out_path: Path, config: QuantizationConfig, calibration: Iterable[Feed], work: Path
) -> None:
    """Static QDQ on the dense MatMuls, then ORT's integer ops for the remaining op types: Attention (its QKV
    projection quantized per call) and EmbedLayerNormalization (int8 tables, looked up and dequantized: weights
    only, so no activation scale and no batch dependence; it quarters the largest tensor of small models).

    `work` keeps the shape-inferred graph and the calibration cache, so re-quantizing with other
    nodes excluded (the accuracy budget) does not re-run calibration.
    """
    onnx = require("onnx", "export")
    require("onnxruntime", "export")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    shaped = work / "shaped.onnx"
    if not shaped.exists():
        infer_shapes(model_path, shaped)
    cache = work / "calibration.json"
    feeds = iter(calibration)

    class Reader(CalibrationDataReader):
        def get_next(self) -> Feed | None:
            return next(feeds, None)

    static_ops = [op for op in config.op_types if op in STATIC_OP_TYPES]
    dynamic_ops = [op for op in config.op_types if op not in STATIC_OP_TYPES]
    exclude = sorted(set(config.exclude_nodes) | set(head_nodes(model_path)))
    qdq = work / "qdq.onnx"
    with _cwd(work), _no_preprocessing_advice():
        quantize_static(
            str(shaped),
            str(qdq),
            None if cache.exists() else Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=static_ops,
            per_channel=config.per_channel,
            reduce_range=config.reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=_weight_type(config),
            nodes_to_exclude=exclude,
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "entropy": CalibrationMethod.Entropy,
                "percentile": CalibrationMethod.Percentile,
            }[config.calibration_method],
            calibration_cache_path=str(cache),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
        )
    if not dynamic_ops:
        os.replace(qdq, out_path)
        return
    quantize_dynamic_int8(qdq, out_path, config.with_options(mode="dynamic", op_types=dynamic_ops))


def infer_shapes(model_path: Path, out_path: Path) -> None:
    """Static quantization needs every activation's type: ORT's symbolic inference knows the fused contrib ops."""
    onnx = require("onnx", "export")
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = SymbolicShapeInference.infer_shapes(onnx.load(str(model_path)), auto_merge=True)
    onnx.save(model, str(out_path))


def calibration_feeds(ids: list[list[int]], type_ids: list[list[int]], limit: int) -> Iterator[Feed]:
    """One unpadded text per feed, so padding positions never widen the activation ranges."""
    if not ids:
        raise InputError("The calibration set is empty; pass a --calib file with at least one text.")
    for token_ids, types in list(zip(ids, type_ids, strict=True))[:limit]:
        input_ids = np.asarray([token_ids], dtype=np.int64)
        yield {
            "input_ids": input_ids,
            "attention_mask": np.ones_like(input_ids),
            "token_type_ids": np.asarray([types], dtype=np.int64),
        }


def _weight_type(config: QuantizationConfig):
    from onnxruntime.quantization import QuantType

    return QuantType.QInt8 if config.weight_type == "qint8" else QuantType.QUInt8


@contextlib.contextmanager
def _no_preprocessing_advice():
    """Drop ORT's "Please consider to run pre-processing before quantization" warning. Its pre-processing is
    symbolic shape inference plus ORT's graph optimization: the graphs given here are already ORT-optimized
    (fuse.py), and static mode runs the shape inference itself (infer_shapes). Nothing is left to pre-process."""

    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


@contextlib.contextmanager
def _cwd(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
