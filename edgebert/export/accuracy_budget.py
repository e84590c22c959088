"""`--max-drop P`: keep quantizing, but return the most sensitive layers to fp32 until the accuracy drop
on the eval set is within P points. Backend-agnostic: the caller supplies how to build a quantized model
with some units kept in fp32, and how to get its logits.

The rule (BUDGET_RULE, also in docs/export.md): a model *meets* the budget when the upper end of the 95%
paired-bootstrap interval of its drop is at most P; it is then `confirmed`. With `--agreement POOL` the interval
comes from a larger, unlabelled pool instead: accuracy can only move on texts whose label changed, so the upper end
of the 95% interval of the changed share (against the fp32 graph) bounds the drop on texts like the pool's. Layers go back to fp32, most
sensitive first, until a model meets it. When only the all-fp32 model would (the eval set is too small to
confirm P: one text is 100/n points), the first model whose measured drop is at most P is kept instead and
the budget is recorded and reported as *not confirmed*; when none is, the export fails.

Sensitivity is measured, not guessed: each unit is quantized alone (everything else fp32) and scored by
the mean |Δlogit| it causes on the eval texts the fp32 model is least sure about (smallest margin between
its top two logits): those are the texts that flip. Units go back to fp32 in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.errors import AccuracyBudgetError
from ..core.measurements import AccuracyBudget, BudgetStep
from .quantize import QuantUnit

SENSITIVITY_SAMPLE = 64  # smallest-margin eval texts used to rank units; the budget is checked on the whole set
BUDGET_RULE = (
    "meets --max-drop P when the 95% paired-bootstrap interval of the drop ends at or below P (confirmed); "
    "if only the all-fp32 model would, the first model whose measured drop is at most P, marked not confirmed"
)


def within(drop_points: float, max_drop_points: float) -> bool:
    """The point estimate is within the budget (a tiny tolerance absorbs float noise: 1 - 0.99 is not 0.01)."""
    return drop_points <= max_drop_points + 1e-9


def confirms(drop_points: float, drop_ci95: list[float] | None, max_drop_points: float) -> bool:
    """The budget rule: the drop's interval lies within the budget."""
    return within(drop_points if drop_ci95 is None else drop_ci95[1], max_drop_points)


def fit_accuracy_budget(
    units: Sequence[QuantUnit],
    build: Callable[[list[str]], Path],
    logits_of: Callable[[Path, np.ndarray | None], np.ndarray],
    reference_logits: np.ndarray,
    score: Callable[[np.ndarray], float],
    max_drop_points: float,
    *,
    interval: Callable[[np.ndarray, np.ndarray], list[float]] | None = None,
    evidence: Callable[[Path], list[float]] | None = None,
    evidence_name: str = "",
    metric: str = "accuracy",
    say: Callable[[str], None] = lambda _: None,
) -> tuple[Path, AccuracyBudget]:
    """Return the model the budget rule keeps, and how it got there.

    build(fp32_unit_names) -> path of a quantized model; logits_of(path, rows) -> logits on the eval set
    (all of it when rows is None, else those row indices); score(all logits) -> the metric (accuracy for
    sequence artifacts, entity F1 for token artifacts, whose logit rows are tokens); interval(reference
    logits, candidate logits) -> the 95% interval of the drop in points (None: decide on the point estimate);
    evidence(path) -> the interval from other evidence, used instead to confirm (export --agreement: the
    changed-label share on an unlabelled pool, named `evidence_name`).
    """
    reference_score = score(reference_logits)

    def measure(fp32_units: list[str]) -> tuple[Path, BudgetStep]:
        path = build(fp32_units)
        logits = logits_of(path, None)
        value = score(logits)
        ci95 = evidence(path) if evidence else interval(reference_logits, logits) if interval else None
        step = BudgetStep(list(fp32_units), value, 100 * (reference_score - value), ci95)
        shown = f" [95% CI {ci95[0]:.2f}, {ci95[1]:.2f}]" if ci95 else ""
        say(f"  fp32 layers {fp32_units or 'none'}: {metric} {value:.4f}, drop {step.drop_points:.2f} pts{shown}")
        return path, step

    path, step = measure([])
    steps = [step]
    kept = (path, step) if within(step.drop_points, max_drop_points) else None  # first within P on the point estimate
    sensitivity: dict[str, float] = {}
    if not confirms(step.drop_points, step.drop_ci95, max_drop_points):
        say(f"drop not confirmed within {max_drop_points} pts: ranking layers by sensitivity")
        sensitivity = rank_sensitivity(units, build, logits_of, reference_logits)
        fp32_units: list[str] = []
        for name in sorted(sensitivity, key=sensitivity.get, reverse=True)[: len(units) - 1]:
            fp32_units.append(name)
            path, step = measure(fp32_units)
            steps.append(step)
            if kept is None and within(step.drop_points, max_drop_points):
                kept = (path, step)
            if confirms(step.drop_points, step.drop_ci95, max_drop_points):
                break
        else:
            if kept is None:
                raise AccuracyBudgetError(
                    f"INT8 meets --max-drop {max_drop_points} only with every quantized layer back in fp32 "
                    f"(drop with all of them INT8: {steps[0].drop_points:.2f} points). Try dynamic INT8 "
                    "(--int8 without --static), raise --max-drop, or export fp32 (no --int8)."
                )
            path, step = kept
            say(
                f"the budget cannot be confirmed on this eval set (short of all-fp32, every interval reaches past "
                f"{max_drop_points} pts): keeping the first model within it on the point estimate; a larger --eval "
                "set can confirm it"
            )
    nodes = {unit.name: unit.nodes for unit in units}
    result = AccuracyBudget(
        max_drop_points=max_drop_points,
        drop_points=step.drop_points,
        fp32_units=step.fp32_units,
        fp32_nodes=[node for name in step.fp32_units for node in nodes[name]],
        sensitivity=sensitivity,
        steps=steps,
        drop_ci95=step.drop_ci95,
        confirmed=confirms(step.drop_points, step.drop_ci95, max_drop_points) if interval or evidence else None,
        evidence=evidence_name if evidence else "paired bootstrap on the eval set" if interval else "",
    )
    return path, result


def rank_sensitivity(
    units: Sequence[QuantUnit],
    build: Callable[[list[str]], Path],
    logits_of: Callable[[Path, np.ndarray | None], np.ndarray],
    reference_logits: np.ndarray,
) -> dict[str, float]:
    """unit -> mean |Δlogit| on a sample when only that unit is quantized."""
    top2 = np.sort(reference_logits, axis=-1)[:, -2:]
    rows = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[:SENSITIVITY_SAMPLE]
    names = [unit.name for unit in units]
    scores = {}
    for name in names:
        path = build([other for other in names if other != name])
        scores[name] = float(np.mean(np.abs(logits_of(path, rows) - reference_logits[rows])))
    return scores
