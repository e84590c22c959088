"""What an export measured, as the manifest records it (core/artifact.py owns the manifest and validates these):
accuracy on --eval and --test with intervals, INT8 drift against the fp32 graph, how an accuracy budget was met,
and how --tune chose among its candidates. Plain dataclasses, decoded by core/typed_json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BudgetStep:
    fp32_units: list[str]
    accuracy: float  # the budget's metric: accuracy (sequence) or entity F1 (token)
    drop_points: float
    drop_ci95: list[float] | None = None  # 95% paired-bootstrap interval of drop_points over the eval rows


@dataclass
class AccuracyBudget:
    """How `--max-drop` was met: which units went back to fp32, each step's accuracy, and what it cost."""

    max_drop_points: float
    drop_points: float
    fp32_units: list[str]
    fp32_nodes: list[str]
    sensitivity: dict[str, float] = field(default_factory=dict)  # unit -> mean |Δlogit| when quantized alone
    steps: list[BudgetStep] = field(default_factory=list)
    latency_cost: dict[str, Any] = field(default_factory=dict)  # shape, p50 of all-INT8 vs final, ratio
    drop_ci95: list[float] | None = None  # of the final step
    confirmed: bool | None = None  # the interval's upper end is within the budget (BUDGET_RULE); None: older export
    evidence: str = ""  # what the interval was measured on (the eval set's bootstrap, or an --agreement pool)


@dataclass
class Drift:
    """What quantization changed against the fp32 graph on the eval texts (sequence task)."""

    agreement: float
    flips: int
    flipped_indices: list[int]
    max_abs_logit_diff: float
    mean_abs_logit_diff: float


@dataclass
class EntityDrift:
    """What quantization changed against the fp32 graph, entity by entity (token task)."""

    sentences_changed: int  # sentences whose entity list differs
    gained: int  # entities the artifact finds that the fp32 graph does not (no overlapping fp32 entity)
    lost: int  # fp32 entities the artifact misses (no overlapping artifact entity)
    changed: int  # overlapping but different span or type
    changed_sentence_indices: list[int] = field(default_factory=list)  # the first 100


@dataclass
class Evaluation:
    """What `--eval` measured at export. `metric` is what `drop_points` and `--max-drop` are in."""

    data: str
    n: int
    metric: str  # "accuracy" (sequence) | "entity_f1" (token)
    score: float  # the artifact's
    reference_score: float  # the fp32 graph's (equal to score for an fp32 artifact)
    drop_points: float  # 100 * (reference_score - score)
    metrics: dict[str, Any]  # the artifact's full scores (per class / per entity type, confusion matrix)
    reference_metrics: dict[str, Any] | None = None  # the fp32 graph's, when the artifact is quantized
    drift: Drift | None = None
    entity_drift: EntityDrift | None = None
    score_ci95: list[float] | None = None  # 95% bootstrap interval of `score` over the eval rows
    drop_ci95: list[float] | None = None  # 95% paired-bootstrap interval of drop_points (quantized artifacts)


@dataclass
class TunedCandidate:
    name: str  # "<checkpoint>/<engine>[+light]"
    layers: int
    drop_points: float  # against the teacher's fp32 graph, on the tuning eval set
    measured: bool  # False when chosen from the recipe table for another CPU
    real_text_ms: float | None = None  # mean per text over the eval texts, as Classifier.predict runs them
    p50_1x128_ms: float | None = None
    on_front: bool = False  # on the latency-vs-drop Pareto front
    error: str | None = None  # why the candidate could not be built
    drop_ci95: list[float] | None = None  # 95% paired-bootstrap interval of drop_points over the eval texts
    confirmed: bool | None = None  # the interval ends within the budget (export/accuracy_budget.BUDGET_RULE)
    real_text_spread_ms: list[float] | None = None  # [fastest, slowest] per-round median, per text
    size_bytes: int | None = None  # the artifact's model files


@dataclass
class Tuning:
    """How `export --tune` chose this artifact among the candidates it built (tuning.md holds the table)."""

    chosen: str
    reason: str
    cpu: str  # the CPU it was measured on, or the --target it was chosen for from the recipe table
    max_drop_points: float
    teacher_score: float
    candidates: list[TunedCandidate]
    rule: str = ""  # how the budget and the ties were decided
    confirmed: bool | None = None  # whether the chosen candidate's drop is confirmed within the budget
    test: Evaluation | None = None  # the chosen candidate on --test (drop against its own fp32 graph); not chosen on
    evidence: str = ""  # what confirmed the drops: the eval set's bootstrap, or an --agreement pool
