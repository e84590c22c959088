"""The model card every artifact carries (`README.md`, checksummed like every other file): what the model is, what it
scored with intervals, how it was quantized and on which CPU, the encoder's licence, and how to load it.

Rendered from the manifest alone, after every other field is known, so the card says nothing the manifest does not
(a test checks the numbers against it). The front matter is the Hugging Face Hub's model-card metadata.
"""

from __future__ import annotations

from ..core.artifact import Manifest
from ..core.measurements import Evaluation
from ..runtime import FRONT_DOORS
from ..tasks import task_class


def model_card(manifest: Manifest) -> str:
    """The card's Markdown for `manifest`."""
    parts = [
        _front_matter(manifest),
        _what_it_is(manifest),
        _scores(manifest),
        _quantization(manifest),
        _reading(manifest),
        _loading(manifest),
        _provenance(manifest),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _front_matter(m: Manifest) -> str:
    licence = (m.source.pretrained or {}).get("licence") or "unknown"
    tags = ["edgebert", m.backend, m.precision, m.task.replace("_", "-")]
    return "\n".join(
        [
            "---",
            "library_name: edgebert",
            f"pipeline_tag: {task_class(m.task).hf_task}",  # the Hub's names for the pipelines
            f"license: {licence.lower() if licence != 'unknown' else 'other'}",
            f"tags: [{', '.join(tags)}]",
            "---",
        ]
    )


def _what_it_is(m: Manifest) -> str:
    pretrained = m.source.pretrained or {}
    encoder = pretrained.get("model") or m.source.base_model
    lines = [
        f"# {task_class(m.task).kind} · {m.backend} {m.precision.upper()}",
        "",
        f"Fine-tuned from **{encoder}** ({pretrained.get('licence') or 'licence not recorded'}), "
        f"{m.source.pooling} pooling, {m.max_length} tokens per call. Labels, in logit order: "
        f"{', '.join(f'`{label}`' for label in m.labels)}.",
    ]
    if m.thresholds:
        given = ", ".join(f"`{label}` ≥ {t:.2f}" for label, t in zip(m.labels, m.thresholds, strict=True))
        lines.append(f"A label is given when its sigmoid score reaches its threshold (chosen on dev): {given}.")
    return "\n".join(lines)


def _scores(m: Manifest) -> str:
    rows = [e for e in (m.evaluation, m.test_evaluation) if e is not None]
    if not rows:
        return "## Scores\n\nNo labelled data was given at export (`--eval`, `--test`): no score is recorded."
    table = [
        "| data | role | n | score [95% CI] | fp32 graph | drop, points [95% CI] |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for role, e in (("selected on", m.evaluation), ("held out", m.test_evaluation)):
        if e is not None:
            table.append(_score_row(role, e))
    note = (
        "Score: accuracy (text classifiers), micro F1 (multi-label) or entity F1 (token classifiers). The drop is "
        "the artifact against its own fp32 graph on the same rows, with a paired-bootstrap interval."
    )
    return "## Scores\n\n" + "\n".join(table) + "\n\n" + note


def _score_row(role: str, e: Evaluation) -> str:
    def interval(values: list[float] | None, scale: float = 100) -> str:
        return "" if values is None else f" [{scale * values[0]:.2f}, {scale * values[1]:.2f}]"

    drop = f"{e.drop_points:+.2f}{interval(e.drop_ci95, 1)}" if e.reference_metrics is not None else "-"
    return (
        f"| `{e.data}` | {role} | {e.n} | {100 * e.score:.2f}{interval(e.score_ci95)} | "
        f"{100 * e.reference_score:.2f} | {drop} |"
    )


def _quantization(m: Manifest) -> str:
    q = m.quantization
    if q is None:
        return "## Precision\n\nfp32: not quantized."
    lines = [
        "## Quantization",
        "",
        f"{q.mode} INT8 ({q.weight_type} weights, {'per channel' if q.per_channel else 'per tensor'}"
        f"{', 7-bit' if q.reduce_range else ''}), recipe `{q.recipe or 'custom'}`, exported on a `{q.export_cpu}` CPU.",
    ]
    if m.openvino_precision == "bf16":
        lines.append(
            "OpenVINO runs its floating-point layers in bf16 (evaluated so, golden logits recorded so); a CPU without "
            "native bf16 (AMX, avx512_bf16) runs them in f32 instead."
        )
    if q.calibration_source:
        lines.append(f"Calibrated on {q.calibration_texts or q.calibration_size} texts of `{q.calibration_source}`.")
    budget = q.accuracy_budget
    if budget is not None:
        kept = ", ".join(budget.fp32_units) or "none"
        confirmed = {True: "confirmed", False: "not confirmed", None: "not checked"}[budget.confirmed]
        lines.append(
            f"Accuracy budget {budget.max_drop_points} points ({confirmed}{'; ' + budget.evidence if budget.evidence else ''}); "
            f"kept in fp32: {kept}."
        )
    if m.tuning is not None:
        lines.append(f"Chosen by `export --tune` on {m.tuning.cpu}: {m.tuning.reason}")
    return "\n".join(lines)


def _reading(m: Manifest) -> str:
    return (
        f"## Long texts\n\nA text longer than {m.max_length} tokens is {m.long_text.describe(m.max_length)}: every "
        "edgebert runtime reads it so by default, and the answer says when a text was cut."
    )


def _loading(m: Manifest) -> str:
    door = FRONT_DOORS[m.task]
    front_door, call = door.__name__, door.EXAMPLE_CALL
    engine = "openvino" if m.backend == "openvino" else "onnxruntime"
    lines = [
        "## Use it",
        "",
        "```python",
        f"from edgebert import {front_door}  # pip install edgebert: numpy, tokenizers, {engine}; no torch",
        "",
        f'model = {front_door}.load("path/to/this/folder")  # checks every file\'s sha256 and replays the golden texts',
        call,
        "```",
        "",
        "Over HTTP: `edgebert serve path/to/this/folder` (text-embeddings-inference's `/predict`, and `/v1/classify`).",
    ]
    if m.backend == "onnxruntime" and door.IN_JAVASCRIPT:
        lines.append(
            "In Node.js or a web page: `examples/node/edgebert.mjs` and `examples/web/` in the edgebert repository "
            "(onnxruntime-node / onnxruntime-web). The inputs and outputs: docs/artifact-format.md there."
        )
    return "\n".join(lines)


def _provenance(m: Manifest) -> str:
    tools = ", ".join(f"{name} {version}" for name, version in sorted(m.tools.items()))
    package = (m.source.pretrained or {}).get("package")
    version = (m.source.pretrained or {}).get("version", "")
    source = f"from the registry package `{package}` {version}".rstrip() if package else f"of `{m.source.base_model}`"
    return (
        "## Provenance\n\n"
        f"Encoder weights {source}. Built with {tools}. "
        "Every file's sha256 is in `edgebert.json`; `edgebert verify` re-checks them and the conformance kit."
    )
