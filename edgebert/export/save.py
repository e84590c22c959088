"""The export's last stage: everything next to the model files. The golden sample (logits the runtime replays at
load), the conformance kit, the Hugging Face reader files, the model card, and the manifest, written last."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.artifact import (
    HF_CONFIG,
    HF_TOKENIZER_CONFIG,
    HF_TOKENIZER_FILES,
    MODEL_CARD,
    GoldenSample,
    Manifest,
    Optimization,
    Quantization,
    Source,
    write_manifest,
)
from ..core.cpu import cpu_info, usable_cpu_count
from ..core.measurements import AccuracyBudget, Evaluation
from ..data.text import TextDataset
from ..runtime.backends import open_backend
from ..runtime.windows import Windows, text_logits
from .config import ExportConfig
from .conformance import write_conformance
from .fuse import check_fusions
from .model_card import model_card
from .onnx_export import PARITY_TEXTS

if TYPE_CHECKING:
    from .pipeline import ExportInputs, Graph

TOOLS = ("edgebert", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers", "numpy")


GOLDEN_ATOL = {"fp32": 1e-3, "int8": 0.05, "bf16": 0.1}  # INT8 kernels and bf16 rounding differ between CPUs


def write_bundle(
    staging: Path,
    model_files: list[str],
    graph: Graph,
    budget: AccuracyBudget | None,
    evaluations: tuple[Evaluation | None, Evaluation | None],
    inputs: ExportInputs,
    config: ExportConfig,
) -> Manifest:
    """Everything next to the model files: golden sample, conformance kit, then the manifest (written last)."""
    meta, task = inputs.meta, inputs.task
    manifest = Manifest(
        task=task.name,
        labels=list(task.labels.names),
        max_length=meta.max_length,
        backend=config.backend,
        precision="int8" if config.quantization else "fp32",
        model_files=model_files,
        files={},
        optimization=Optimization(
            opset=config.opset,
            fusions=graph.fusions,
            unfused=check_fusions(graph.fusions, graph.fusable_layers) if graph.fusions else [],
            last_layer="cls_only" if config.light_last_layer else "full",
            vocabulary=inputs.vocabulary,
            note=graph.note,
        ),
        source=Source(
            checkpoint=str(inputs.checkpoint),
            base_model=meta.base_model,
            pooling=meta.pooling,
            train_dev_metrics=meta.dev_metrics,
            pretrained=meta.pretrained,
        ),
        quantization=_quantization_record(config, budget, inputs.calibration_data),
        golden=golden_sample(staging / model_files[0], inputs, config),
        evaluation=evaluations[0],
        test_evaluation=evaluations[1],
        thresholds=task.decision_thresholds(),
        tools=tool_versions(),
        long_text=inputs.long_text,
        openvino_precision=config.openvino_precision,
    )
    write_hf_config(staging, inputs)
    write_conformance(
        staging,
        inputs.encoder,
        getattr(inputs.eval_data, "texts", None) or (),
        inputs.long_text,
        _kit_logits(staging / model_files[0], inputs, config),
    )
    (staging / MODEL_CARD).write_text(model_card(manifest), encoding="utf-8")
    write_manifest(staging, manifest)
    return manifest


def write_hf_config(staging: Path, inputs: ExportInputs) -> None:
    """config.json (labels in id2label, vocab_size as trimmed) and the tokenizer's companion files, so tools that
    speak the Hugging Face layout (Optimum's ORTModelFor..., transformers' AutoTokenizer) open the artifact too."""
    config = json.loads((inputs.checkpoint / HF_CONFIG).read_text(encoding="utf-8"))
    labels = list(inputs.task.labels.names)
    config.update(id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)})
    if inputs.vocabulary is not None:
        config["vocab_size"] = inputs.vocabulary.kept
    (staging / HF_CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    for name in HF_TOKENIZER_FILES:
        if (inputs.checkpoint / name).is_file():
            shutil.copyfile(inputs.checkpoint / name, staging / name)
    if not (staging / HF_TOKENIZER_CONFIG).is_file():  # transformers.js needs one to build the tokenizer
        minimal = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": inputs.meta.max_length}
        (staging / HF_TOKENIZER_CONFIG).write_text(json.dumps(minimal, indent=2), encoding="utf-8")


def golden_sample(model_path: Path, inputs: ExportInputs, config: ExportConfig) -> GoldenSample:
    """The parity texts' ids and logits from the saved model, one text per call, as the runtime replays them
    (dynamic INT8 picks activation scales per batch, so batch-mates would change the logits)."""
    ids, types = inputs.encoder.encode(PARITY_TEXTS)
    engine = open_backend(config.backend, model_path, usable_cpu_count(), **config.engine_options)
    logits = inputs.task.golden_logits(engine, inputs.encoder, ids, types)
    return GoldenSample(texts=PARITY_TEXTS, input_ids=ids, logits=logits, atol=GOLDEN_ATOL[golden_kind(config)])


def golden_kind(config: ExportConfig) -> str:
    """Which tolerance another machine's replay gets: bf16 layers round differently by CPU, INT8 kernels a little."""
    if config.openvino_precision == "bf16":
        return "bf16"
    return "int8" if config.quantization else "fp32"


def _kit_logits(model_path: Path, inputs: ExportInputs, config: ExportConfig):
    """logits(windows) per text from the saved model, one window per call as golden logits are; None for token
    models (their windows are stitched per token, not aggregated)."""
    if inputs.task.parity_unit != "texts":
        return None

    def logits(windows: Windows) -> np.ndarray:
        engine = open_backend(config.backend, model_path, usable_cpu_count(), **config.engine_options)
        rows = inputs.task.logits(engine, inputs.encoder, windows.ids, windows.type_ids, batch_size=1)
        return text_logits(rows, windows, inputs.long_text.aggregate)

    return logits


def _quantization_record(
    config: ExportConfig, budget: AccuracyBudget | None, calibration: TextDataset | None
) -> Quantization | None:
    if config.quantization is None:
        return None
    record = Quantization(**config.quantization.to_dict(), export_cpu=cpu_info().isa, accuracy_budget=budget)
    if calibration is not None:
        record.calibration_source = calibration.source
        record.calibration_texts = min(len(calibration), config.quantization.calibration_size)
    return record


def tool_versions() -> dict[str, str]:
    versions = {}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
