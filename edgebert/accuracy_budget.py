"""`--max-drop P`: keep quantizing, but return the most sensitive layers to fp32 until the accuracy drop
on the eval set is at most P points. Backend-agnostic: the caller supplies how to build a quantized model
with some units kept in fp32, and how to get its logits.

Sensitivity is measured, not guessed: each unit is quantized alone (everything else fp32) and scored by
the mean |Δlogit| it causes on a sample of eval texts. Units go back to fp32 in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AccuracyBudgetError
from .quantize import QuantUnit

SENSITIVITY_SAMPLE = 64  # eval texts used to rank units; the budget itself is checked on the whole set


@dataclass
class BudgetStep:
    fp32_units: list[str]
    accuracy: float
    drop_points: float


@dataclass
class BudgetResult:
    max_drop_points: float
    drop_points: float
    fp32_units: list[str]
    fp32_nodes: list[str]
    sensitivity: dict[str, float] = field(default_factory=dict)  # unit -> mean |Δlogit| when quantized alone
    steps: list[BudgetStep] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_accuracy_budget(
    units: Sequence[QuantUnit],
    build: Callable[[list[str]], Path],
    logits_of: Callable[[Path, np.ndarray | None], np.ndarray],
    reference_logits: np.ndarray,
    y_true: Sequence[int],
    max_drop_points: float,
    *,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[Path, BudgetResult]:
    """Return the model built with the fewest fp32 units whose drop is within budget, and how it got there.

    build(fp32_unit_names) -> path of a quantized model; logits_of(path, rows) -> logits on the eval set
    (all of it when rows is None, else those row indices).
    """
    y = np.asarray(y_true)
    reference_accuracy = float(np.mean(reference_logits.argmax(-1) == y))

    def measure(fp32_units: list[str]) -> tuple[Path, BudgetStep]:
        path = build(fp32_units)
        accuracy = float(np.mean(logits_of(path, None).argmax(-1) == y))
        step = BudgetStep(list(fp32_units), accuracy, 100 * (reference_accuracy - accuracy))
        say(f"  fp32 layers {fp32_units or 'none'}: accuracy {accuracy:.4f}, drop {step.drop_points:.2f} pts")
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
        else:
            raise AccuracyBudgetError(
                f"Accuracy drop stays at {step.drop_points:.2f} points with every layer in fp32 "
                f"(budget {max_drop_points}). Raise --max-drop, or export without --int8."
            )
    nodes = {unit.name: unit.nodes for unit in units}
    result = BudgetResult(
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
    rows = np.linspace(0, len(reference_logits) - 1, min(SENSITIVITY_SAMPLE, len(reference_logits))).astype(int)
    names = [unit.name for unit in units]
    scores = {}
    for name in names:
        path = build([other for other in names if other != name])
        scores[name] = float(np.mean(np.abs(logits_of(path, rows) - reference_logits[rows])))
    return scores
