"""Checkpoint -> verified artifact: load -> validate -> export ONNX -> check parity -> fuse (ORT) or compile to IR
(OpenVINO) -> quantize (within an accuracy budget) -> evaluate -> golden sample -> manifest -> save atomically.

The runtime never sees anything but the saved directory (its format: core/artifact.py).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import (
    SEQUENCE,
    TOKEN,
    TOKENIZER,
    AccuracyBudget,
    Evaluation,
    GoldenSample,
    Manifest,
    Optimization,
    Quantization,
    Source,
    quantizes_per_call,
    write_manifest,
)
from ..core.cpu import cpu_info, usable_cpu_count
from ..core.errors import InputError, require
from ..core.files import atomic_directory, check_writable, temporary_directory
from ..data.tasks import task_for
from ..data.text import LabelSet, TextDataset, require_labels
from ..data.tokens import TokenDataset
from ..modeling.checkpoint import read_checkpoint_meta
from ..runtime.backends import open_backend
from ..runtime.model import batched_token_logits
from ..runtime.tokenization import TextEncoder
from .accuracy_budget import fit_accuracy_budget
from .builder import ModelBuilder, latency_cost
from .config import ExportConfig
from .conformance import write_conformance
from .evaluate import accuracy_of, entity_f1_of, model_logits, sequence_evaluation, task_logits, token_evaluation
from .fuse import check_fusions, optimize_for_onnxruntime, require_attention_fusion
from .onnx_export import PARITY_TEXTS, check_parity, export_onnx

TOOLS = ("edgebert", "torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "tokenizers", "numpy")
GOLDEN_ATOL = {"fp32": 1e-3, "int8": 0.05}  # INT8 kernels differ slightly between CPUs


@dataclass
class ExportReport:
    out: Path
    manifest: Manifest
    parity: dict[str, Any]
    size_bytes: int
    budget: AccuracyBudget | None = None


def export_artifact(
    checkpoint: Path,
    out: Path,
    config: ExportConfig,
    *,
    eval_data: TextDataset | TokenDataset | None = None,
    calibration_data: TextDataset | None = None,
    force: bool = False,
    progress: bool = True,
) -> ExportReport:
    checkpoint, out = Path(checkpoint), Path(out)
    check_writable(out, force, inputs=(checkpoint, *(d.source for d in (eval_data, calibration_data) if d)))
    meta = read_checkpoint_meta(checkpoint)
    labels = LabelSet(tuple(meta.labels))
    num_labels, task = len(labels.names), meta.task
    _check_stage_inputs(config, task, eval_data, calibration_data)
    if config.light_last_layer and (task, meta.pooling) != (SEQUENCE, "cls"):
        raise InputError(
            f"--light-last-layer applies to [CLS]-pooled sequence models; {checkpoint} is a {task} model "
            f"with {meta.pooling} pooling. Drop the flag."
        )
    y_eval = labels.encode(require_labels(eval_data), eval_data.source) if eval_data and task != TOKEN else None
    encoder = TextEncoder.from_file(checkpoint / TOKENIZER, meta.max_length)
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda _: None)

    say(f"loading {checkpoint}")
    require("transformers", "export")
    from ..modeling.models import TorchBackend, load_checkpoint_model

    model = load_checkpoint_model(checkpoint)
    parity_texts = (eval_data.texts[:32] if eval_data else []) + PARITY_TEXTS
    parity_ids, parity_types = encoder.encode(parity_texts)

    with temporary_directory("edgebert-export-") as tmp, atomic_directory(out, force) as staging:
        work = Path(tmp)
        # ---- export, then every graph must reproduce torch on the parity texts
        say("exporting to ONNX (dynamic batch and sequence axes)")
        raw = export_onnx(
            model,
            work / "onnx",
            config.opset,
            task=task,
            pooling=meta.pooling,
            light_last_layer=config.light_last_layer,
        )
        torch_logits = task_logits(task, TorchBackend(model), encoder, parity_ids, parity_types, num_labels, 8)

        def graph_logits(path: Path) -> np.ndarray:
            return model_logits("onnxruntime", path, encoder, parity_ids, parity_types, num_labels, task=task)

        parity = check_parity(torch_logits, graph_logits(raw), config.parity_atol, stage="ONNX export")
        # layers whose attention ONNX Runtime can fuse: the light last layer is plain ops by design
        layers = model.config.num_hidden_layers - int(config.light_last_layer)
        fusions: dict[str, int] = {}
        graph = raw
        if config.backend == "onnxruntime" and config.optimize:
            say("fusing transformer ops for ONNX Runtime")
            graph = work / "optimized.onnx"
            fusions = optimize_for_onnxruntime(
                raw, graph, num_heads=model.config.num_attention_heads, hidden_size=model.config.hidden_size
            )
            if config.require_attention_fusion:
                require_attention_fusion(fusions, layers)
            parity = check_parity(torch_logits, graph_logits(graph), config.parity_atol, stage="graph fusion")

        # ---- quantize (or compile), within the accuracy budget when one is set
        eval_ids, eval_types, score_of = [], [], None  # score_of(logits): the metric --max-drop is in
        if y_eval is not None:
            eval_ids, eval_types = encoder.encode(eval_data.texts)
            score_of = accuracy_of(y_eval)
        elif eval_data is not None and task == TOKEN:
            token_task = task_for(TOKEN, labels)
            encoded_eval = token_task.encode(encoder, eval_data)
            eval_ids, eval_types = encoded_eval.ids, encoded_eval.type_ids
            score_of = entity_f1_of(token_task, encoded_eval)
        calib_ids, calib_types = encoder.encode(calibration_data.texts) if calibration_data else ([], [])
        builder = ModelBuilder(config, graph, work, calib_ids, calib_types, progress=progress)
        budget, quantization = None, config.quantization
        per_call = quantizes_per_call(config.backend, quantization)  # run as the runtime will: one row per call
        if quantization:
            say(f"quantizing to INT8 ({quantization.mode}, recipe {quantization.recipe or 'custom'}, {config.backend})")
        # fp32 logits on the eval set: the reference of both the budget and the drift
        fp32_eval = (
            model_logits("onnxruntime", graph, encoder, eval_ids, eval_types, num_labels, task=task)
            if quantization and score_of is not None
            else None
        )
        if quantization and config.max_drop_points is not None:

            def logits_of(path: Path, rows: np.ndarray | None) -> np.ndarray:
                if task == TOKEN:  # rows index tokens of all sentences: score every sentence, then pick
                    flat = model_logits(
                        config.backend, path, encoder, eval_ids, eval_types, num_labels, task=task, row_by_row=per_call
                    )
                    return flat if rows is None else flat[rows]
                ids = eval_ids if rows is None else [eval_ids[i] for i in rows]
                types = eval_types if rows is None else [eval_types[i] for i in rows]
                return model_logits(config.backend, path, encoder, ids, types, num_labels, row_by_row=per_call)

            metric = "entity F1" if task == TOKEN else "accuracy"
            say(
                f"fitting the accuracy budget: {metric} drop at most {config.max_drop_points} pts on {eval_data.source}"
            )
            built, budget = fit_accuracy_budget(
                builder.units,
                builder.build,
                logits_of,
                fp32_eval,
                score_of,
                config.max_drop_points,
                metric=metric,
                say=say,
            )
            if budget.fp32_units:
                budget.latency_cost = latency_cost(config.backend, builder.built[0], built)
        else:
            built = builder.build([])
        model_files = builder.save(built, staging)
        shutil.copyfile(checkpoint / TOKENIZER, staging / TOKENIZER)
        model_path = staging / model_files[0]

        # ---- evaluate what was saved
        evaluation: Evaluation | None = None
        if eval_data is not None and task == TOKEN:
            say(f"evaluating on {len(eval_data)} sentences from {eval_data.source}")
            fp32_graph = graph if quantization else None
            evaluation = token_evaluation(
                config.backend, fp32_graph, model_path, encoder, labels, eval_data, row_by_row=per_call
            )
        elif eval_data is not None:
            say(f"evaluating on {len(eval_data)} texts from {eval_data.source}")
            candidate = model_logits(
                config.backend, model_path, encoder, eval_ids, eval_types, num_labels, row_by_row=per_call
            )
            reference = candidate if fp32_eval is None else fp32_eval
            evaluation = sequence_evaluation(eval_data.source, reference, candidate, y_eval, labels)

        manifest = Manifest(
            task=task,
            labels=list(labels.names),
            max_length=meta.max_length,
            backend=config.backend,
            precision="int8" if quantization else "fp32",
            model_files=model_files,
            files={},
            optimization=Optimization(
                opset=config.opset,
                fusions=fusions,
                unfused=check_fusions(fusions, layers) if fusions else [],
                last_layer="cls_only" if config.light_last_layer else "full",
            ),
            source=Source(
                checkpoint=str(checkpoint),
                base_model=meta.base_model,
                pooling=meta.pooling,
                train_dev_metrics=meta.dev_metrics,
            ),
            quantization=_quantization_record(config, budget, calibration_data),
            golden=golden_sample(config.backend, model_path, encoder, task, num_labels, quantization is not None),
            evaluation=evaluation,
            tools=tool_versions(),
        )
        write_conformance(staging, encoder, getattr(eval_data, "texts", None) or ())
        write_manifest(staging, manifest)
        size = sum((staging / name).stat().st_size for name in model_files)
    return ExportReport(out=out, manifest=manifest, parity=parity, size_bytes=size, budget=budget)


def golden_sample(
    backend: str, model_path: Path, encoder: TextEncoder, task: str, num_labels: int, quantized: bool
) -> GoldenSample:
    """The parity texts' ids and logits from the saved model, one text per call, as the runtime replays them
    (dynamic INT8 picks activation scales per batch, so batch-mates would change the logits)."""
    ids, types = encoder.encode(PARITY_TEXTS)
    engine = open_backend(backend, model_path, usable_cpu_count())
    if task == TOKEN:
        logits = [row.tolist() for row in batched_token_logits(engine, encoder, ids, types, 1, num_labels)]
    else:
        logits = task_logits(task, engine, encoder, ids, types, num_labels, batch_size=1).tolist()
    return GoldenSample(
        texts=PARITY_TEXTS, input_ids=ids, logits=logits, atol=GOLDEN_ATOL["int8" if quantized else "fp32"]
    )


def _check_stage_inputs(
    config: ExportConfig, task: str, eval_data: TextDataset | TokenDataset | None, calibration: TextDataset | None
) -> None:
    if task == TOKEN and calibration is not None:
        raise InputError("Static INT8 calibration is not supported for token classification yet; use --int8.")
    if config.max_drop_points is not None and eval_data is None:
        raise InputError("--max-drop measures the drop on labelled data: add --eval FILE (e.g. --eval bbc_news:dev).")
    if config.needs_calibration and calibration is None:
        raise InputError(
            "Static INT8 (--static, or --backend openvino --int8) needs calibration texts: add --calib FILE "
            "(JSONL/CSV/TSV or one text per line; a few hundred texts like the ones the app will see)."
        )
    if calibration is not None and not config.needs_calibration:
        raise InputError("--calib is only used by static INT8: add --static, or drop --calib.")
    if calibration is not None and len(calibration) == 0:
        raise InputError(f"The calibration set {calibration.source} is empty; pass a file with at least one text.")


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
