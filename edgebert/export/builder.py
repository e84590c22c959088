"""Builds the backend's model from the checked fp32 graph: quantized ONNX (dynamic or static), or OpenVINO IR,
optionally with some units kept in fp32 (what the accuracy budget asks for)."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from ..core.artifact import MODEL_FILES, ONNX_MODEL
from ..core.cpu import usable_cpu_count
from ..core.progress import progress_bar
from ..core.timing import measure_interleaved, median_ms, synthetic_batch
from ..runtime.backends import open_backend
from .config import ExportConfig
from .openvino_ir import convert_to_ir, openvino_units
from .quantize import (
    STATIC_OP_TYPES,
    QuantUnit,
    calibration_feeds,
    quantizable_units,
    quantize_dynamic_int8,
    quantize_static_int8,
)


class ModelBuilder:
    """Builds the backend's model from the checked fp32 graph, optionally keeping some layers in fp32."""

    def __init__(
        self, config: ExportConfig, graph: Path, work: Path, calib_ids: list, calib_types: list, progress: bool = True
    ) -> None:
        self.config, self.graph, self.work, self.progress = config, graph, work, progress
        self.calib_ids, self.calib_types = calib_ids, calib_types
        self.built: list[Path] = []

    @functools.cached_property
    def units(self) -> list[QuantUnit]:
        """What the accuracy budget can return to fp32 (read from the graph once per export)."""
        if self.config.backend == "openvino":
            return openvino_units(self.graph)
        q = self.config.quantization
        if q.mode == "static":  # only the calibrated MatMuls carry static error: rank them one by one
            units = quantizable_units(self.graph, STATIC_OP_TYPES, per_node=True)
        else:
            units = quantizable_units(self.graph, q.op_types)
        return [u for u in units if not u.name.startswith("head")]

    def build(self, fp32_units: list[str]) -> Path:
        out_dir = self.work / f"build-{len(self.built) + 1}"
        out_dir.mkdir()
        path = self._build(fp32_units, out_dir)
        self.built.append(path)
        return path

    def _build(self, fp32_units: list[str], out_dir: Path) -> Path:
        q = self.config.quantization
        if self.config.backend == "openvino":
            out = out_dir / "model.xml"
            calibration = None
            if q:
                calibration = calibration_feeds(self.calib_ids, self.calib_types, q.calibration_size)
            convert_to_ir(
                self.graph,
                out,
                calibration=calibration,
                calibration_size=q.calibration_size if q else 0,
                fp32_units=fp32_units,
                progress=self.progress,
            )
            return out
        if q is None:
            return self.graph
        out = out_dir / ONNX_MODEL
        excluded = [n for u in self.units if u.name in fp32_units for n in u.nodes] if fp32_units else []
        q = q.with_options(exclude_nodes=sorted(set(q.exclude_nodes) | set(excluded)))
        if q.mode == "static":
            feeds = calibration_feeds(self.calib_ids, self.calib_types, q.calibration_size)
            if self.progress and not (self.work / "calibration.json").exists():  # calibration runs once
                total = min(len(self.calib_ids), q.calibration_size)
                feeds = progress_bar(feeds, total=total, desc="calibrating", unit="text")
            quantize_static_int8(self.graph, out, q, feeds, self.work)
        else:
            quantize_dynamic_int8(self.graph, out, q)
        return out

    def save(self, built: Path, staging: Path) -> list[str]:
        names = MODEL_FILES[self.config.backend]  # [model.onnx] or [model.xml, model.bin]
        for source, name in zip([built, built.with_suffix(".bin")], names, strict=False):
            shutil.copyfile(source, staging / name)
        return list(names)


def latency_cost(backend: str, all_int8: Path, final: Path, batch: int = 1, tokens: int = 128) -> dict[str, float]:
    """What the layers returned to fp32 cost: p50 of both models at batch x tokens, interleaved."""
    feed = synthetic_batch(batch, tokens, vocab_size=100)  # latency depends on the shape, not the ids
    engines = {
        "all_int8": open_backend(backend, all_int8, usable_cpu_count()),
        "final": open_backend(backend, final, usable_cpu_count()),
    }
    samples = measure_interleaved(
        {k: (lambda e=e: e.run(*feed)) for k, e in engines.items()}, rounds=3, seconds_per_round=0.5
    )
    p50 = {k: median_ms(v) for k, v in samples.items()}
    return {
        "shape": f"{batch}x{tokens}",
        "all_int8_p50_ms": p50["all_int8"],
        "final_p50_ms": p50["final"],
        "ratio": p50["final"] / p50["all_int8"],
    }
