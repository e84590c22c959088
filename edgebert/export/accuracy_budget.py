"""`--max-drop P`: keep quantizing, but return the most sensitive layers to fp32 until the accuracy drop
on the eval set is at most P points. Backend-agnostic: the caller supplies how to build a quantized model
with some units kept in fp32, and how to get its logits.

Sensitivity is measured, not guessed: each unit is quantized alone (everything else fp32) and scored by
the mean |Δlogit| it causes on the eval texts the fp32 model is least sure about (smallest margin between
its top two logits): those are the texts that flip. Units go back to fp32 in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.artifact import AccuracyBudget, BudgetStep
from ..core.errors import AccuracyBudgetError
from .quantize import QuantUnit

SENSITIVITY_SAMPLE = 64  # smallest-margin eval texts used to rank units; the budget is checked on the whole set


def fit_accuracy_budget(
    units: Sequence[QuantUnit],
    build: Callable[[list[str]], Path],
    logits_of: Callable[[Path, np.ndarray | None], np.ndarray],
    reference_logits: np.ndarray,
    score: Callable[[np.ndarray], float],
    max_drop_points: float,
    *,
    metric: str = "accuracy",
    say: Callable[[str], None] = lambda _: None,
) -> tuple[Path, AccuracyBudget]:
    """Return the model built with the fewest fp32 units whose drop is within budget, and how it got there.

    build(fp32_unit_names) -> path of a quantized model; logits_of(path, rows) -> logits on the eval set
    (all of it when rows is None, else those row indices); score(all logits) -> the metric (accuracy for
    sequence artifacts, entity F1 for token artifacts, whose logit rows are tokens).
    """
    reference_score = score(reference_logits)

    def measure(fp32_units: list[str]) -> tuple[Path, BudgetStep]:
        path = build(fp32_units)
        value = score(logits_of(path, None))
        step = BudgetStep(list(fp32_units), value, 100 * (reference_score - value))
        say(f"  fp32 layers {fp32_units or 'none'}: {metric} {value:.4f}, drop {step.drop_points:.2f} pts")
        return path, step

    path, step = measure([])
    steps = [step]
    sensitivity: dict[str, float] = {}
    if step.drop_points > max_drop_points:
        say(f"drop {step.drop_points:.2f} pts > budget {max_drop_points} pts: ranking layers by sensitivity")
        sensitivity = rank_sensitivity(units, build, logits_of, reference_logits)
        fp32_units: list[str] = []
        for name in sorted(sensitivity, key=sensitivity.get, reverse=True):
            fp32_units.append(name)
            path, step = measure(fp32_units)
            steps.append(step)
            if step.drop_points <= max_drop_points:
                break
        if len(fp32_units) == len(units):
            raise AccuracyBudgetError(
                f"INT8 meets --max-drop {max_drop_points} only with every quantized layer back in fp32 "
                f"(drop with all of them INT8: {steps[0].drop_points:.2f} points). Try dynamic INT8 "
                "(--int8 without --static), raise --max-drop, or export fp32 (no --int8)."
            )
    nodes = {unit.name: unit.nodes for unit in units}
    result = AccuracyBudget(
        max_drop_points=max_drop_points,
        drop_points=step.drop_points,
        fp32_units=step.fp32_units,
        fp32_nodes=[node for name in step.fp32_units for node in nodes[name]],
        sensitivity=sensitivity,
        steps=steps,
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
