"""Checkpoint -> verified artifact bundle: load -> validate -> export ONNX -> check parity -> fuse ->
quantize -> evaluate -> save atomically. The runtime never sees anything but the saved bundle."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import GoldenSample, Manifest, atomic_directory, check_writable, write_manifest
from .checkpoint import read_checkpoint_meta
from .compile import check_fusions, optimize_for_onnxruntime, require_attention_fusion
from .config import ExportConfig
from .cpu import cpu_info, usable_cpu_count
from .data import LabelSet, TextDataset, require_labels
from .errors import ParityError, require
from .metrics import classification_metrics, drift
from .quantize import quantize_dynamic_int8
from .runtime.backends import OnnxRuntimeBackend
from .runtime.classifier import TASK, batched_logits
from .runtime.tokenization import TextEncoder

# Texts that exercise the tokenizer's edges; always part of the parity check and the golden sample.
PARITY_TEXTS = [
    "The central bank raised interest rates again on Thursday.",
    "",
    "Ünïcödé, emoji 🙂 and a tab\there — still one text.",
    "中文和English混合的句子，含全角标点！123",
]
TOOLS = ("edgebert", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers", "numpy")


@dataclass
class ExportReport:
    out: Path
    manifest: Manifest
    parity: dict[str, Any]
    size_bytes: int


def export_artifact(
    checkpoint: Path,
    out: Path,
    config: ExportConfig,
    *,
    eval_data: TextDataset | None = None,
    force: bool = False,
    progress: bool = True,
) -> ExportReport:
    checkpoint, out = Path(checkpoint), Path(out)
    check_writable(out, force)
    meta = read_checkpoint_meta(checkpoint)
    labels = LabelSet(tuple(meta.labels))
    y_eval = labels.encode(require_labels(eval_data), eval_data.source) if eval_data else None
    encoder = TextEncoder.from_file(checkpoint / "tokenizer.json", meta.max_length)

    _say(progress, f"loading {checkpoint}")
    model = load_torch_classifier(checkpoint)
    num_labels = len(labels.names)
    parity_texts = (eval_data.texts[:32] if eval_data else []) + PARITY_TEXTS
    parity_ids, parity_types = encoder.encode(parity_texts)

    with tempfile.TemporaryDirectory(prefix="edgebert-export-") as tmp, atomic_directory(out, force) as staging:
        work = Path(tmp)
        _say(progress, "exporting to ONNX (dynamic batch and sequence axes)")
        graph = export_onnx(model, work / "onnx", config.opset)

        from .train import TorchBackend

        torch_logits = batched_logits(TorchBackend(model), encoder, parity_ids, parity_types, 8, num_labels)

        def graph_logits(path: Path) -> np.ndarray:
            return onnx_logits(path, encoder, parity_ids, parity_types, num_labels)

        parity = check_parity(torch_logits, graph_logits(graph), config.parity_atol, stage="ONNX export")

        fusions: dict[str, int] = {}
        if config.optimize:
            _say(progress, "fusing transformer ops for ONNX Runtime")
            optimized = work / "optimized.onnx"
            fusions = optimize_for_onnxruntime(
                graph, optimized, num_heads=model.config.num_attention_heads, hidden_size=model.config.hidden_size
            )
            if config.require_attention_fusion:
                require_attention_fusion(fusions, model.config.num_hidden_layers)
            parity = check_parity(torch_logits, graph_logits(optimized), config.parity_atol, stage="graph fusion")
            graph = optimized
        reference_graph = graph

        quantization = config.quantization
        if quantization:
            _say(progress, f"quantizing to INT8 ({quantization.mode}, recipe {quantization.recipe or 'custom'})")
            quantized = work / "int8.onnx"
            quantize_dynamic_int8(graph, quantized, quantization)
            graph = quantized

        shutil.copyfile(graph, staging / "model.onnx")
        shutil.copyfile(checkpoint / "tokenizer.json", staging / "tokenizer.json")

        evaluation = None
        if eval_data is not None:
            _say(progress, f"evaluating on {len(eval_data)} texts from {eval_data.source}")
            evaluation = evaluate_against_reference(
                reference_graph,
                staging / "model.onnx",
                encoder,
                eval_data.texts,
                y_eval,
                labels.names,
                same_model=quantization is None,
            )

        golden_ids, golden_types = encoder.encode(PARITY_TEXTS)
        golden_logits = onnx_logits(staging / "model.onnx", encoder, golden_ids, golden_types, num_labels, batch_size=1)
        manifest = Manifest(
            task=TASK,
            labels=list(labels.names),
            max_length=meta.max_length,
            backend="onnxruntime",
            precision="int8" if quantization else "fp32",
            model_files=["model.onnx"],
            files={},
            quantization={**quantization.to_dict(), "export_cpu": cpu_info().isa} if quantization else None,
            optimization={
                "opset": config.opset,
                "fusions": fusions,
                "unfused": check_fusions(fusions, model.config.num_hidden_layers) if fusions else [],
            },
            tools=tool_versions(),
            golden=GoldenSample(
                texts=PARITY_TEXTS,
                input_ids=golden_ids,
                logits=golden_logits.tolist(),
                atol=0.05 if quantization else 1e-3,
            ),
            evaluation=evaluation,
            source={
                "checkpoint": str(checkpoint),
                "base_model": meta.base_model,
                "train_dev_metrics": meta.dev_metrics,
            },
        )
        write_manifest(staging, manifest)
        size = (staging / "model.onnx").stat().st_size
    return ExportReport(out=out, manifest=manifest, parity=parity, size_bytes=size)


def load_torch_classifier(checkpoint: Path):
    transformers = require("transformers", "train")
    # Eager attention: SDPA exports as one opaque pattern that ORT's attention fusion cannot match.
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        checkpoint, attn_implementation="eager"
    ).eval()


def export_onnx(model, out_dir: Path, opset: int) -> Path:
    """Export through optimum's exporter with dynamic batch and sequence axes; returns the model path."""
    require("optimum.exporters.onnx", "export")
    from optimum.exporters.onnx import onnx_export_from_model

    onnx_export_from_model(model, output=out_dir, task="text-classification", opset=opset, do_validation=False)
    return out_dir / "model.onnx"


def onnx_logits(
    path: Path, encoder: TextEncoder, ids: list, type_ids: list, num_labels: int, batch_size: int = 32
) -> np.ndarray:
    backend = OnnxRuntimeBackend(path, usable_cpu_count())
    return batched_logits(backend, encoder, ids, type_ids, batch_size, num_labels)


def check_parity(reference: np.ndarray, candidate: np.ndarray, atol: float, *, stage: str) -> dict[str, Any]:
    """Max |Δlogit| and argmax agreement; raises ParityError when out of tolerance."""
    max_diff = float(np.max(np.abs(reference - candidate)))
    agreement = float(np.mean(reference.argmax(-1) == candidate.argmax(-1)))
    if not max_diff <= atol or agreement < 1.0:  # `not <=` also catches NaN
        raise ParityError(
            f"{stage} changed the model's outputs: max |Δlogit| {max_diff:.3g} (tolerance {atol:g}), "
            f"argmax agreement {agreement:.1%}. The exported graph is wrong; please report it with the checkpoint's config.json.",
            max_abs_diff=max_diff,
            atol=atol,
            agreement=agreement,
        )
    return {"stage": stage, "max_abs_logit_diff": max_diff, "agreement": agreement, "atol": atol, "n": len(reference)}


def evaluate_against_reference(
    reference_graph: Path,
    candidate_graph: Path,
    encoder: TextEncoder,
    texts: list[str],
    y_true: list[int],
    labels: tuple[str, ...],
    *,
    same_model: bool,
) -> dict[str, Any]:
    ids, type_ids = encoder.encode(texts)
    candidate = onnx_logits(candidate_graph, encoder, ids, type_ids, len(labels))
    reference = candidate if same_model else onnx_logits(reference_graph, encoder, ids, type_ids, len(labels))
    result = drift(reference, candidate, y_true, labels)
    result["metrics"] = classification_metrics(y_true, candidate.argmax(-1), labels)
    return result


def tool_versions() -> dict[str, str]:
    versions = {}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr)
