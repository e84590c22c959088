"""The export's closing summary: what was built, how it was checked, and what quantization cost."""

from __future__ import annotations

from pathlib import Path

from ..core.artifact import TOKENIZER, is_full_range_u8s8
from ..core.cpu import SATURATING_ISAS
from ..tasks import task_class
from .pipeline import ExportReport


def format_export_summary(report: ExportReport) -> str:
    m = report.manifest
    q = m.quantization
    rows = [
        ("artifact", str(report.out)),
        ("backend", m.backend + (" (float layers in bf16)" if m.openvino_precision == "bf16" else "")),
        ("precision", m.precision + (f" ({q.mode}, recipe {q.recipe or 'custom'})" if q else "")),
        ("model size", f"{report.size_bytes / 1e6:.1f} MB"),
        ("fusions", ", ".join(f"{k} {v}" for k, v in m.optimization.fusions.items()) or m.optimization.note or "none"),
        ("last layer", "[CLS] only (light)" if m.optimization.last_layer == "cls_only" else "full"),
        ("vocabulary", _vocabulary(m.optimization.vocabulary, report.out)),
        ("long texts", m.long_text.describe(m.max_length)),
        (
            "parity vs torch",
            f"max |Δlogit| {report.parity['max_abs_logit_diff']:.2e} on {report.parity['n']} "
            + task_class(m.task).parity_unit,
        ),
    ]
    rows += _evaluation_rows(m.evaluation, m.precision, "")
    if m.test_evaluation is not None:
        rows.append(("held-out test", f"{m.test_evaluation.data}: reported only, nothing was chosen on it"))
        rows += _evaluation_rows(m.test_evaluation, m.precision, "test ")
    if report.budget is not None:
        b = report.budget
        kept = ", ".join(b.fp32_units) or "none"
        status = {True: "confirmed by its interval", False: "NOT confirmed: the evidence is too small", None: ""}
        rows.append(
            (
                "accuracy budget",
                f"drop {b.drop_points:.2f} on the eval set ≤ {b.max_drop_points} pts, interval{_interval(b.drop_ci95)}"
                f"{'; ' if b.confirmed is not None else ''}{status[b.confirmed]}; layers kept fp32: {kept}",
            )
        )
        if b.evidence:
            rows.append(("budget evidence", b.evidence))
        if b.latency_cost:
            c = b.latency_cost
            cost = f"{c['shape']} p50 {c['final_p50_ms']:.1f} ms vs {c['all_int8_p50_ms']:.1f} ms all-INT8 ({c['ratio']:.2f}x)"
            rows.append(("budget latency cost", cost))
    if is_full_range_u8s8(m.backend, q) and q.export_cpu in SATURATING_ISAS:
        rows.append(
            (
                "warning",
                f"full-range INT8 evaluated on {q.export_cpu} without VNNI: the scores and golden logits above include "
                "u8xs8 saturation that VNNI CPUs do not have. It will not load here; run `edgebert verify` on a VNNI "
                "machine, and re-export there if its golden check fails.",
            )
        )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _evaluation_rows(e, precision: str, prefix: str) -> list[tuple[str, str]]:
    """The rows of one evaluation (on --eval, or with prefix 'test ' on --test)."""
    if e is None:
        return []
    if e.metric == "entity_f1":
        if precision != "int8":
            return [(f"{prefix}entity P / R / F1", "{precision:.4f} / {recall:.4f} / {f1:.4f}".format(**e.metrics))]
        drift = e.entity_drift
        changes = (
            f"; vs fp32: {drift.gained} entities gained, {drift.lost} lost, {drift.changed} changed in "
            f"{drift.sentences_changed} sentences"
            if drift
            else ""
        )
        return [
            (
                f"{prefix}entity F1 fp32 / int8",
                f"{e.reference_score:.4f} / {e.score:.4f}{_interval(e.score_ci95, '.4f')}",
            ),
            (
                f"{prefix}int8 drift",
                f"entity F1 drop {e.drop_points:.2f} pts{_interval(e.drop_ci95)} on {e.n} sentences{changes}",
            ),
        ]
    name, second = ("micro F1", "macro F1") if e.metric == "micro_f1" else ("accuracy", "F1")
    f1 = e.metrics["macro_f1"]
    if precision != "int8":
        return [
            (f"{prefix}{name} / {second}", f"{e.score:.4f}{_interval(e.score_ci95, '.4f')} / {f1:.4f} on {e.n} texts")
        ]
    d = e.drift
    resolution = f"; one text = {100 / e.n:.2f} pts" if e.metric == "accuracy" else ""
    return [
        (f"{prefix}fp32 {name} / {second}", f"{e.reference_score:.4f} / {e.reference_metrics['macro_f1']:.4f}"),
        (f"{prefix}int8 {name} / {second}", f"{e.score:.4f}{_interval(e.score_ci95, '.4f')} / {f1:.4f} on {e.n} texts"),
        (
            f"{prefix}int8 drift",
            f"{name} drop {e.drop_points:.2f} pts{_interval(e.drop_ci95)}, agreement {d.agreement:.2%}, "
            f"{d.flips} {'texts changed' if e.metric == 'micro_f1' else 'flips'}, max |Δlogit| "
            f"{d.max_abs_logit_diff:.3f}{resolution}",
        ),
    ]


def _vocabulary(trim, artifact: Path) -> str:
    if trim is None:  # as the checkpoint has it (train --trim-vocab may have cut it before fine-tuning)
        from tokenizers import Tokenizer

        try:
            size = Tokenizer.from_file(str(artifact / TOKENIZER)).get_vocab_size(with_added_tokens=True)
        except Exception:  # a summary of a report whose artifact moved: say less, not fail
            return "the checkpoint's"
        return f"the checkpoint's ({size:,} pieces)"
    scripts = f" + every {', '.join(trim.keep_scripts)} piece" if trim.keep_scripts else ""
    return (
        f"trimmed {trim.original_size:,} -> {trim.kept:,} pieces (those of {', '.join(trim.coverage)}, special "
        f"tokens, single characters{scripts}); {trim.checked_rows} covered rows re-checked, same ids and logits"
    )


def _interval(ci95: list[float] | None, fmt: str = ".2f") -> str:
    """' [95% CI low, high]', or nothing when the manifest has no interval."""
    return f" [95% CI {ci95[0]:{fmt}}, {ci95[1]:{fmt}}]" if ci95 else ""
