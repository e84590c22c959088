"""Checkpoint -> verified artifact, in the order CTranslate2's converters read: load -> validate -> transform -> save.

    load_inputs          read the checkpoint's meta, its task and tokenizer; check the options against the task
    trim_vocabulary      --trim-vocab: only the pieces the coverage texts need, in the tokenizer and the embeddings
    export_graph         torch -> ONNX, then every graph must reproduce torch on the parity texts
    fuse_graph           ONNX Runtime's transformer fusions (attention must fuse on every layer)
    quantize_graph       INT8 (dynamic, static or OpenVINO), within the accuracy budget when --max-drop is set
    evaluate_saved       (evaluate.py) the saved model's scores on --eval and what quantization changed
    evaluate_on_test     (evaluate.py) --test: the same on held-out data nothing above was chosen on (reported only)
    write_bundle         (save.py) golden sample, conformance kit, provenance and the manifest, next to the model files

The runtime never sees anything but the saved directory (its format: core/artifact.py). What differs between
sequence and token models is asked of the task (edgebert/tasks/), never compared here.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import (
    TOKENIZER,
    LongText,
    Manifest,
    VocabularyTrim,
)
from ..core.cpu import cpu_info
from ..core.errors import InputError, ParityError, require
from ..core.files import atomic_directory, check_writable, temporary_directory
from ..core.measurements import AccuracyBudget
from ..data.text import TextDataset
from ..data.tokens import TokenDataset
from ..modeling.checkpoint import CheckpointMeta, read_checkpoint_meta
from ..modeling.vocabulary import KEEP_RULE, plan_trim, trim_embeddings, trim_tokenizer
from ..runtime.tokenization import TextEncoder
from ..tasks import Encoded, Task, task_of
from .accuracy_budget import fit_accuracy_budget
from .agreement import changed_bound, check_pool, evidence_name
from .builder import ModelBuilder, latency_cost
from .config import ExportConfig
from .evaluate import evaluate_on_test, evaluate_saved, saved_engine
from .fuse import optimize_for_onnxruntime, require_attention_fusion
from .onnx_export import PARITY_TEXTS, check_parity, export_onnx
from .save import write_bundle

TRIM_CHECK_ROWS = 256  # covered rows re-tokenized and re-run in torch after trimming


@dataclass
class ExportReport:
    out: Path
    manifest: Manifest
    parity: dict[str, Any]
    size_bytes: int
    budget: AccuracyBudget | None = None


@dataclass
class ExportInputs:
    """What `load_inputs` read and checked: everything the later stages need, nothing loaded twice."""

    checkpoint: Path
    meta: CheckpointMeta
    task: Task
    encoder: TextEncoder
    eval_data: TextDataset | TokenDataset | None
    calibration_data: TextDataset | None
    encoded_eval: Encoded | None  # eval_data encoded by the task (ids, type ids, targets)
    test_data: TextDataset | TokenDataset | None = None  # --test: reported on, never selected on
    tokenizer_json: str = ""  # what the artifact's tokenizer.json will hold
    vocabulary: VocabularyTrim | None = None  # what trim_vocabulary did
    agreement_data: TextDataset | None = None  # --agreement: unlabelled texts that confirm the budget
    long_text: LongText = field(default_factory=LongText)  # how the artifact reads long texts (`reading`)


@dataclass
class Graph:
    """The checked fp32 graph and what is known of it: parity against torch, fusions, layers that can fuse."""

    path: Path
    parity: dict[str, Any]
    fusions: dict[str, int]
    fusable_layers: int
    torch_logits: np.ndarray  # the reference every graph is checked against (parity texts)
    note: str = ""  # why the graph is what it is, when that is not the norm (e.g. exported unfused)


def export_artifact(
    checkpoint: Path,
    out: Path,
    config: ExportConfig,
    *,
    eval_data: TextDataset | TokenDataset | None = None,
    calibration_data: TextDataset | None = None,
    coverage_data: Sequence[TextDataset | TokenDataset] = (),
    test_data: TextDataset | TokenDataset | None = None,
    agreement_data: TextDataset | None = None,
    force: bool = False,
    progress: bool = True,
) -> ExportReport:
    checkpoint, out = Path(checkpoint), Path(out)
    sources = [d.source for d in (eval_data, calibration_data, test_data, agreement_data, *coverage_data) if d]
    check_writable(out, force, inputs=(checkpoint, *sources))
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda _: None)
    inputs = load_inputs(checkpoint, config, eval_data, calibration_data, test_data, agreement_data)
    say(f"loading {checkpoint}")
    require("transformers", "export")
    from ..modeling.models import load_checkpoint_model

    model = load_checkpoint_model(checkpoint)
    inputs = trim_vocabulary(model, inputs, config, coverage_data, say)
    with temporary_directory("edgebert-export-") as tmp, atomic_directory(out, force) as staging:
        work = Path(tmp)
        graph = export_graph(model, inputs, config, work, say)
        graph = fuse_graph(model, graph, inputs, config, work, say)
        builder = ModelBuilder(config, graph.path, work, *_calibration_ids(inputs), progress=progress)
        built, budget, fp32_eval = quantize_graph(builder, graph, inputs, config, say)
        model_files = builder.save(built, staging)
        (staging / TOKENIZER).write_text(inputs.tokenizer_json, encoding="utf-8")
        evaluation = evaluate_saved(staging / model_files[0], graph, fp32_eval, inputs, config, say)
        test_evaluation = evaluate_on_test(staging / model_files[0], graph, inputs, config, say)
        manifest = write_bundle(staging, model_files, graph, budget, (evaluation, test_evaluation), inputs, config)
        size = sum((staging / name).stat().st_size for name in model_files)
    return ExportReport(out=out, manifest=manifest, parity=graph.parity, size_bytes=size, budget=budget)


# ---- load -> validate
def load_inputs(
    checkpoint: Path,
    config: ExportConfig,
    eval_data: TextDataset | TokenDataset | None,
    calibration_data: TextDataset | None,
    test_data: TextDataset | TokenDataset | None = None,
    agreement_data: TextDataset | None = None,
) -> ExportInputs:
    meta = read_checkpoint_meta(checkpoint)
    task = task_of(meta)
    check_agreement(task, config, agreement_data)
    task.check_export(
        pooling=meta.pooling,
        light_last_layer=config.light_last_layer,
        calibrated=calibration_data is not None,
        checkpoint=checkpoint,
    )
    check_stage_inputs(config, eval_data, calibration_data, test_data)
    encoder = TextEncoder.from_file(checkpoint / TOKENIZER, meta.max_length)
    encoded_eval = task.encode(encoder, eval_data) if eval_data is not None else None
    tokenizer_json = (checkpoint / TOKENIZER).read_text(encoding="utf-8")
    return ExportInputs(
        checkpoint,
        meta,
        task,
        encoder,
        eval_data,
        calibration_data,
        encoded_eval,
        test_data,
        tokenizer_json,
        agreement_data=agreement_data,
        long_text=reading(config, meta),
    )


def reading(config: ExportConfig, meta: CheckpointMeta) -> LongText:
    """How the artifact will read long texts: --long-text, else as the checkpoint was trained (`train --long-text
    chunk` trains on windows, so its artifact chunks), else truncate."""
    long_text = config.long_text or LongText(meta.trained_long_text)
    if (problem := long_text.problem(meta.max_length)) is not None:
        raise InputError(f"--long-text: {problem}.")
    return long_text


def check_agreement(task: Task, config: ExportConfig, pool: TextDataset | None) -> None:
    """--agreement confirms a --max-drop budget, for tasks whose metric a changed-label share bounds."""
    if pool is None:
        return
    if config.max_drop_points is None:
        raise InputError("--agreement confirms an accuracy budget: add --max-drop POINTS (and --eval), or drop it.")
    check_pool(pool)
    task.changed_labels(np.zeros((1, 2)), np.zeros((1, 2)))  # refuses tasks the bound does not hold for


def check_stage_inputs(
    config: ExportConfig,
    eval_data: TextDataset | TokenDataset | None,
    calibration: TextDataset | None,
    test_data: TextDataset | TokenDataset | None = None,
) -> None:
    if test_data is not None and eval_data is not None and test_data.source == eval_data.source:
        raise InputError(
            f"--test {test_data.source} is also --eval: the test set must be one nothing was selected on. "
            "Select on dev (--eval DATA:dev) and report on test (--test DATA:test)."
        )
    if config.openvino_precision == "bf16" and not cpu_info().native_bf16:
        raise InputError(
            "--openvino-precision bf16 is evaluated and recorded on the exporting CPU, and this one has no native bf16 "
            "(avx512_bf16 or AMX): export on such a CPU, or drop the flag."
        )
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


# ---- transform
def trim_vocabulary(model, inputs: ExportInputs, config: ExportConfig, coverage_data, say) -> ExportInputs:
    """--trim-vocab: keep the pieces the coverage, --eval and --calib data need (modeling/vocabulary.py); cut the
    tokenizer and the embedding rows alike. Refused unless covered rows keep their ids (renumbered) and their
    torch logits."""
    if not config.trim_vocabulary:
        return inputs
    from tokenizers import Tokenizer

    from ..modeling.models import TorchBackend

    task, data = inputs.task, [d for d in (*coverage_data, inputs.eval_data, inputs.calibration_data) if d]
    if not data:
        raise InputError("--trim-vocab needs texts to keep the pieces of: give it the training data (e.g. DATA:train).")
    say(f"trimming the vocabulary to the pieces of {', '.join(d.source for d in data)}")
    coverage, pretokenized = [], False
    for d in data:
        rows, pretokenized = task.tokenizer_inputs(d)
        coverage += rows
    trim = plan_trim(inputs.tokenizer_json, coverage, pretokenized=pretokenized, keep_scripts=config.trim_keep_scripts)
    sample = data[0].subset(range(min(TRIM_CHECK_ROWS, len(data[0]))), f"{data[0].source}[:{TRIM_CHECK_ROWS}]")
    check_ids, check_types = task.encode_inputs(inputs.encoder, sample)
    before = task.logits(TorchBackend(model), inputs.encoder, check_ids, check_types, batch_size=8)
    tokenizer_json = trim_tokenizer(inputs.tokenizer_json, trim)
    encoder = TextEncoder(Tokenizer.from_str(tokenizer_json), inputs.meta.max_length)
    trim_embeddings(model, trim)
    new_ids, new_types = task.encode_inputs(encoder, sample)
    if new_ids != [trim.new_ids(row) for row in check_ids]:
        raise ParityError("The trimmed tokenizer splits covered texts differently; export without --trim-vocab.")
    after = task.logits(TorchBackend(model), encoder, new_ids, new_types, batch_size=8)
    diff = float(np.abs(after - before).max()) if len(before) else 0.0
    if not diff <= config.parity_atol:
        raise ParityError(
            f"The trimmed model's logits moved by {diff:.3g} on covered texts; export without --trim-vocab."
        )
    record = VocabularyTrim(
        original_size=trim.original_size,
        kept=len(trim.keep),
        coverage=[d.source for d in data],
        rule=KEEP_RULE,
        keep_scripts=list(config.trim_keep_scripts),
        checked_rows=len(check_ids),
        max_abs_logit_diff=diff,
    )
    say(f"vocabulary: {trim.original_size:,} -> {len(trim.keep):,} pieces; {len(check_ids)} covered rows unchanged")
    encoded_eval = task.encode(encoder, inputs.eval_data) if inputs.eval_data is not None else None
    return dataclasses.replace(
        inputs, encoder=encoder, encoded_eval=encoded_eval, tokenizer_json=tokenizer_json, vocabulary=record
    )


def export_graph(model, inputs: ExportInputs, config: ExportConfig, work: Path, say) -> Graph:
    """torch -> ONNX with dynamic batch and sequence axes; refused unless it reproduces torch on the parity texts."""
    from ..modeling.models import TorchBackend

    model_type = getattr(model.config, "model_type", "bert")
    if config.light_last_layer and model_type != "bert":
        raise InputError(f"--light-last-layer rewrites BERT's last layer; this is a {model_type} model. Drop the flag.")
    say("exporting to ONNX (dynamic batch and sequence axes)")
    task, meta = inputs.task, inputs.meta
    raw = export_onnx(
        model, work / "onnx", config.opset, task=task, pooling=meta.pooling, light_last_layer=config.light_last_layer
    )
    ids, types = _parity_ids(inputs)
    torch_logits = task.logits(TorchBackend(model), inputs.encoder, ids, types, batch_size=8)
    graph_logits = task.model_logits("onnxruntime", raw, inputs.encoder, ids, types)
    parity = check_parity(torch_logits, graph_logits, config.parity_atol, stage="ONNX export")
    # layers whose attention ONNX Runtime can fuse: the light last layer is plain ops by design
    layers = model.config.num_hidden_layers - int(config.light_last_layer)
    return Graph(raw, parity, {}, layers, torch_logits)


def fuse_graph(model, raw: Graph, inputs: ExportInputs, config: ExportConfig, work: Path, say) -> Graph:
    """ONNX Runtime's transformer fusions (the fp32 graph every backend starts from); checked against torch again."""
    if config.backend != "onnxruntime" or not config.optimize:
        return raw
    say("fusing transformer ops for ONNX Runtime")
    fused = work / "optimized.onnx"
    fusions = optimize_for_onnxruntime(
        raw.path, fused, num_heads=model.config.num_attention_heads, hidden_size=model.config.hidden_size
    )
    model_type = getattr(model.config, "model_type", "bert")
    if model_type != "bert" and fusions.get("Attention", 0) < raw.fusable_layers:
        # a Hugging Face directory of another architecture: run it unfused rather than fail (and say so)
        note = (
            f"ONNX Runtime's transformer optimizer fused attention on {fusions.get('Attention', 0)} of "
            f"{raw.fusable_layers} layers of this {model_type} model: exported unfused (slower than a BERT)"
        )
        say(note)
        return dataclasses.replace(raw, note=note)
    if config.require_attention_fusion:
        require_attention_fusion(fusions, raw.fusable_layers)
    ids, types = _parity_ids(inputs)
    graph_logits = inputs.task.model_logits("onnxruntime", fused, inputs.encoder, ids, types)
    parity = check_parity(raw.torch_logits, graph_logits, config.parity_atol, stage="graph fusion")
    return Graph(fused, parity, fusions, raw.fusable_layers, raw.torch_logits)


def quantize_graph(
    builder: ModelBuilder, graph: Graph, inputs: ExportInputs, config: ExportConfig, say
) -> tuple[Path, AccuracyBudget | None, np.ndarray | None]:
    """(the built model, the accuracy budget it met, the fp32 graph's eval logits: the reference of budget and drift)."""
    quantization, task, encoded = config.quantization, inputs.task, inputs.encoded_eval
    if not quantization:
        return builder.build([]), None, None
    say(f"quantizing to INT8 ({quantization.mode}, recipe {quantization.recipe or 'custom'}, {config.backend})")
    fp32_eval = None
    if encoded is not None:
        fp32_eval = task.model_logits("onnxruntime", graph.path, inputs.encoder, encoded.ids, encoded.type_ids)
    if config.max_drop_points is None:
        return builder.build([]), None, fp32_eval
    assert inputs.eval_data is not None and encoded is not None  # check_stage_inputs
    say(
        f"fitting the accuracy budget: {task.metric} drop at most {config.max_drop_points} pts on {inputs.eval_data.source}"
    )
    evidence, evidence_name = agreement_evidence(graph, inputs, config, say)
    built, budget = fit_accuracy_budget(
        builder.units,
        builder.build,
        _budget_logits(inputs, config),
        fp32_eval,
        task.budget_score(encoded),
        config.max_drop_points,
        interval=task.budget_interval(encoded),
        evidence=evidence,
        evidence_name=evidence_name,
        metric=task.metric,
        say=say,
    )
    if budget.fp32_units:
        budget.latency_cost = latency_cost(config.backend, builder.built[0], built)
    return built, budget, fp32_eval


def agreement_evidence(graph: Graph, inputs: ExportInputs, config: ExportConfig, say):
    """--agreement POOL: (evidence(path) -> the drop's bound from the share of pool texts whose label the candidate
    changes against the fp32 graph, its name), or (None, "") without a pool. Run as the runtime runs the model."""
    pool = inputs.agreement_data
    if pool is None:
        return None, ""
    task = inputs.task
    ids, types = task.encode_inputs(inputs.encoder, pool)
    say(f"agreement pool: {len(ids)} unlabelled texts from {pool.source}, fp32 reference")
    reference = task.model_logits("onnxruntime", graph.path, inputs.encoder, ids, types)

    def evidence(path: Path) -> list[float]:
        candidate = task.logits(saved_engine(path, config), inputs.encoder, ids, types)
        return changed_bound(task.changed_labels(reference, candidate), say)

    return evidence, evidence_name(pool, "the fp32 graph")


def _budget_logits(inputs: ExportInputs, config: ExportConfig) -> Callable[[Path, np.ndarray | None], np.ndarray]:
    """logits_of(model, rows) for the budget, run as the runtime will run it (one row per call where that matters)."""

    def logits_of(path: Path, rows: np.ndarray | None) -> np.ndarray:
        def run(ids: list, types: list) -> np.ndarray:
            return inputs.task.logits(saved_engine(path, config), inputs.encoder, ids, types)

        return inputs.task.budget_logits(run, inputs.encoded_eval, rows)

    return logits_of


def _parity_ids(inputs: ExportInputs) -> tuple[list, list]:
    """The first 32 eval texts and the fixed parity texts (mixed scripts, long and short)."""
    texts = (inputs.eval_data.texts[:32] if inputs.eval_data else []) + PARITY_TEXTS
    return inputs.encoder.encode(texts)


def _calibration_ids(inputs: ExportInputs) -> tuple[list, list]:
    return inputs.encoder.encode(inputs.calibration_data.texts) if inputs.calibration_data else ([], [])
