"""Checkpoint -> verified artifact bundle: load -> validate -> export ONNX -> check parity -> fuse (ORT) or
compile to IR (OpenVINO) -> quantize (within an accuracy budget) -> evaluate -> save atomically. The runtime never sees anything but the saved bundle."""

from __future__ import annotations

import functools
import importlib.metadata
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .accuracy_budget import BudgetResult, fit_accuracy_budget
from .artifact import GoldenSample, Manifest, atomic_directory, check_writable, write_manifest
from .checkpoint import read_checkpoint_meta
from .compile import check_fusions, optimize_for_onnxruntime, require_attention_fusion
from .config import ExportConfig
from .cpu import cpu_info, usable_cpu_count
from .data import LabelSet, TextDataset, require_labels
from .errors import InputError, ParityError, require
from .metrics import classification_metrics, drift
from .openvino_ir import convert_to_ir, openvino_units
from .quantize import (
    STATIC_OP_TYPES,
    QuantUnit,
    calibration_feeds,
    quantizable_units,
    quantize_dynamic_int8,
    quantize_static_int8,
)
from .runtime.backends import open_backend
from .runtime.classifier import TASK, batched_logits, batched_token_logits
from .runtime.token_classifier import TOKEN_TASK
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
    budget: BudgetResult | None = None


def export_artifact(
    checkpoint: Path,
    out: Path,
    config: ExportConfig,
    *,
    eval_data: TextDataset | None = None,
    calibration_data: TextDataset | None = None,
    force: bool = False,
    progress: bool = True,
) -> ExportReport:
    checkpoint, out = Path(checkpoint), Path(out)
    check_writable(out, force)
    meta = read_checkpoint_meta(checkpoint)
    labels = LabelSet(tuple(meta.labels))
    token_task = meta.task == "token"
    if token_task and config.max_drop_points is not None:
        raise InputError("--max-drop is not supported for token classification yet; export without it.")
    y_eval = labels.encode(require_labels(eval_data), eval_data.source) if eval_data and not token_task else None
    _check_stage_inputs(config, eval_data, calibration_data)
    encoder = TextEncoder.from_file(checkpoint / "tokenizer.json", meta.max_length)
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda _: None)

    say(f"loading {checkpoint}")
    model = load_torch_classifier(checkpoint)
    num_labels = len(labels.names)
    parity_texts = (eval_data.texts[:32] if eval_data else []) + PARITY_TEXTS
    parity_ids, parity_types = encoder.encode(parity_texts)
    kind = meta.task

    with tempfile.TemporaryDirectory(prefix="edgebert-export-") as tmp, atomic_directory(out, force) as staging:
        work = Path(tmp)
        say("exporting to ONNX (dynamic batch and sequence axes)")
        raw = export_onnx(model, work / "onnx", config.opset, task=meta.task, pooling=meta.pooling)

        from .train import TorchBackend

        torch_logits = task_logits(kind, TorchBackend(model), encoder, parity_ids, parity_types, num_labels, 8)

        def graph_logits(path: Path) -> np.ndarray:
            return model_logits("onnxruntime", path, encoder, parity_ids, parity_types, num_labels, task=kind)

        parity = check_parity(torch_logits, graph_logits(raw), config.parity_atol, stage="ONNX export")
        layers = model.config.num_hidden_layers
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

        eval_ids, eval_types = encoder.encode(eval_data.texts) if eval_data and not token_task else ([], [])
        calib_ids, calib_types = encoder.encode(calibration_data.texts) if calibration_data else ([], [])
        builder = ModelBuilder(config, graph, work, calib_ids, calib_types, progress=progress)
        budget = None
        quantization = config.quantization
        if quantization:
            say(f"quantizing to INT8 ({quantization.mode}, recipe {quantization.recipe or 'custom'}, {config.backend})")
        # fp32 logits on the eval set: the budget's reference and the drift's reference
        fp32_eval = (
            onnx_logits(graph, encoder, eval_ids, eval_types, num_labels)
            if quantization and eval_data and not token_task
            else None
        )
        if quantization and config.max_drop_points is not None:

            def logits_of(path: Path, rows: np.ndarray | None) -> np.ndarray:
                ids = eval_ids if rows is None else [eval_ids[i] for i in rows]
                types = eval_types if rows is None else [eval_types[i] for i in rows]
                return model_logits(config.backend, path, encoder, ids, types, num_labels)

            say(f"fitting the accuracy budget: drop at most {config.max_drop_points} pts on {eval_data.source}")
            built, budget = fit_accuracy_budget(
                builder.units, builder.build, logits_of, fp32_eval, y_eval, config.max_drop_points, say=say
            )
            if budget.fp32_units:
                budget.latency_cost = latency_cost(config.backend, builder.built[0], built)
        else:
            built = builder.build([])
        model_files = builder.save(built, staging)
        shutil.copyfile(checkpoint / "tokenizer.json", staging / "tokenizer.json")
        model_path = staging / model_files[0]

        evaluation = None
        if eval_data is not None and token_task:
            say(f"evaluating on {len(eval_data)} sentences from {eval_data.source}")
            evaluation = evaluate_token_artifact(
                config.backend, graph if quantization else None, model_path, encoder, labels, eval_data
            )
        elif eval_data is not None:
            say(f"evaluating on {len(eval_data)} texts from {eval_data.source}")
            candidate = model_logits(config.backend, model_path, encoder, eval_ids, eval_types, num_labels)
            evaluation = drift(candidate if fp32_eval is None else fp32_eval, candidate, y_eval, labels.names)
            evaluation["metrics"] = classification_metrics(y_eval, candidate.argmax(-1), labels.names)

        golden_ids, golden_types = encoder.encode(PARITY_TEXTS)
        # One text per call: dynamic INT8 picks activation scales per batch, so batch-mates change logits.
        golden_engine = open_backend(config.backend, model_path, usable_cpu_count())
        if token_task:
            rows = batched_token_logits(golden_engine, encoder, golden_ids, golden_types, 1)
            golden_logits = [row.tolist() for row in rows]
        else:
            golden_logits = batched_logits(golden_engine, encoder, golden_ids, golden_types, 1, num_labels).tolist()
        manifest = Manifest(
            task=TOKEN_TASK if token_task else TASK,
            labels=list(labels.names),
            max_length=meta.max_length,
            backend=config.backend,
            precision="int8" if quantization else "fp32",
            model_files=model_files,
            files={},
            quantization=_quantization_record(config, budget, calibration_data),
            optimization={
                "opset": config.opset,
                "fusions": fusions,
                "unfused": check_fusions(fusions, layers) if fusions else [],
            },
            tools=tool_versions(),
            golden=GoldenSample(
                texts=PARITY_TEXTS,
                input_ids=golden_ids,
                logits=golden_logits,
                atol=0.05 if quantization else 1e-3,
            ),
            evaluation=evaluation,
            source={
                "checkpoint": str(checkpoint),
                "pooling": meta.pooling,
                "base_model": meta.base_model,
                "train_dev_metrics": meta.dev_metrics,
            },
        )
        write_manifest(staging, manifest)
        size = sum((staging / name).stat().st_size for name in model_files)
    return ExportReport(out=out, manifest=manifest, parity=parity, size_bytes=size, budget=budget)


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
            )
            return out
        if q is None:
            return self.graph
        out = out_dir / "model.onnx"
        excluded = [n for u in self.units if u.name in fp32_units for n in u.nodes] if fp32_units else []
        q = q.with_options(exclude_nodes=sorted(set(q.exclude_nodes) | set(excluded)))
        if q.mode == "static":
            feeds = calibration_feeds(self.calib_ids, self.calib_types, q.calibration_size)
            if self.progress and not (self.work / "calibration.json").exists():  # calibration runs once
                from tqdm import tqdm

                total = min(len(self.calib_ids), q.calibration_size)
                feeds = tqdm(feeds, total=total, desc="calibrating", unit="text", file=sys.stderr)
            quantize_static_int8(self.graph, out, q, feeds, self.work)
        else:
            quantize_dynamic_int8(self.graph, out, q)
        return out

    def save(self, built: Path, staging: Path) -> list[str]:
        if self.config.backend == "openvino":
            shutil.copyfile(built, staging / "model.xml")
            shutil.copyfile(built.with_suffix(".bin"), staging / "model.bin")
            return ["model.xml", "model.bin"]
        shutil.copyfile(built, staging / "model.onnx")
        return ["model.onnx"]


def latency_cost(backend: str, all_int8: Path, final: Path, batch: int = 1, tokens: int = 128) -> dict[str, float]:
    """What the layers returned to fp32 cost: p50 of both models at batch x tokens, interleaved."""
    from .bench import measure_interleaved, synthetic_batch

    feed = synthetic_batch(batch, tokens, vocab_size=100)  # latency depends on the shape, not the ids
    engines = {
        "all_int8": open_backend(backend, all_int8, usable_cpu_count()),
        "final": open_backend(backend, final, usable_cpu_count()),
    }
    samples = measure_interleaved(
        {k: (lambda e=e: e.run(*feed)) for k, e in engines.items()}, rounds=3, seconds_per_round=0.5
    )
    p50 = {k: float(np.median([t for r in v for t in r])) for k, v in samples.items()}
    return {
        "shape": f"{batch}x{tokens}",
        "all_int8_p50_ms": p50["all_int8"],
        "final_p50_ms": p50["final"],
        "ratio": p50["final"] / p50["all_int8"],
    }


def _check_stage_inputs(config: ExportConfig, eval_data: TextDataset | None, calibration: TextDataset | None) -> None:
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
    config: ExportConfig, budget: BudgetResult | None, calibration: TextDataset | None
) -> dict[str, Any] | None:
    if config.quantization is None:
        return None
    record = {**config.quantization.to_dict(), "export_cpu": cpu_info().isa}
    if calibration is not None:
        record["calibration_source"] = calibration.source
        record["calibration_texts"] = min(len(calibration), config.quantization.calibration_size)
    if budget is not None:
        record["accuracy_budget"] = budget.to_dict()
    return record


def load_torch_classifier(checkpoint: Path):
    """The checkpoint's torch model (eager attention, eval mode), whatever its task and pooling."""
    require("transformers", "train")
    from .modeling import load_trained

    meta = read_checkpoint_meta(checkpoint)
    return load_trained(checkpoint, meta.task, meta.pooling)


def export_onnx(model, out_dir: Path, opset: int, *, task: str = "sequence", pooling: str = "cls") -> Path:
    """Export with dynamic batch and sequence axes; returns the model path.

    Hugging Face heads go through optimum's exporter; the mean-pooling head (not a transformers class)
    through torch.onnx with the same input and output names."""
    if task == "sequence" and pooling == "mean":
        from .modeling import onnx_export

        return onnx_export(model, out_dir / "model.onnx", opset, token_level=False)
    require("optimum.exporters.onnx", "export")
    from optimum.exporters.onnx import onnx_export_from_model

    hf_task = "token-classification" if task == "token" else "text-classification"
    onnx_export_from_model(model, output=out_dir, task=hf_task, opset=opset, do_validation=False)
    return out_dir / "model.onnx"


def onnx_logits(
    path: Path, encoder: TextEncoder, ids: list, type_ids: list, num_labels: int, batch_size: int = 32
) -> np.ndarray:
    return model_logits("onnxruntime", path, encoder, ids, type_ids, num_labels, batch_size)


def model_logits(
    backend: str,
    path: Path,
    encoder: TextEncoder,
    ids: list,
    type_ids: list,
    num_labels: int,
    batch_size: int = 32,
    *,
    task: str = "sequence",
) -> np.ndarray:
    engine = open_backend(backend, path, usable_cpu_count())
    return task_logits(task, engine, encoder, ids, type_ids, num_labels, batch_size)


def task_logits(
    task: str, engine, encoder: TextEncoder, ids: list, type_ids: list, num_labels: int, batch_size: int = 32
) -> np.ndarray:
    """(N, K) logits per text, or for token tasks (total tokens, K): every real token of every row."""
    if task == "token":
        rows = batched_token_logits(engine, encoder, ids, type_ids, batch_size)
        return np.concatenate(rows) if rows else np.zeros((0, num_labels), np.float32)
    return batched_logits(engine, encoder, ids, type_ids, batch_size, num_labels)


def evaluate_token_artifact(
    backend: str, fp32_graph: Path | None, model_path: Path, encoder: TextEncoder, labels: LabelSet, data
) -> dict[str, Any]:
    """Entity-level scores of the exported model and, when quantized, of its fp32 graph and the drop."""
    from .train_tasks import TokenTask

    task = TokenTask(labels)
    encoded = task.encode(encoder, data)
    engine = open_backend(backend, model_path, usable_cpu_count())
    candidate = task.evaluate(engine, encoder, encoded, 32)
    result: dict[str, Any] = {"metrics": candidate}
    if fp32_graph is not None:
        reference = task.evaluate(open_backend("onnxruntime", fp32_graph, usable_cpu_count()), encoder, encoded, 32)
        result.update(
            reference_f1=reference["f1"],
            candidate_f1=candidate["f1"],
            f1_drop_points=100 * (reference["f1"] - candidate["f1"]),
            reference_tag_accuracy=reference["tag_accuracy"],
            candidate_tag_accuracy=candidate["tag_accuracy"],
        )
    return result


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


def tool_versions() -> dict[str, str]:
    versions = {}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
