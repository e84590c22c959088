"""`export --tune`: build every candidate that applies, time each on this CPU, keep the fastest within the budget.

Candidates: for the teacher and each student checkpoint, each INT8 engine (ORT dynamic with this CPU's recipe,
ORT static, OpenVINO INT8, and on CPUs with native bf16 OpenVINO INT8 whose float layers run in bf16), each with and
without the light last layer. Each is a complete artifact built by
the ordinary export pipeline (so its evaluation is what users get), scored against the *teacher's* fp32 graph
(a 95% paired-bootstrap interval of the drop over the eval texts), and timed interleaved with the others on
real eval texts and the 1x128 shape.

The choice (TUNE_RULE): among candidates within the budget, those *confirmed* (interval within it, as
--max-drop decides) are preferred; if none is, the point estimate decides and the choice says it is not
confirmed. Of those, the fastest on real texts, except that candidates whose round-to-round timing spread
overlaps the fastest's are ties: ties go to the smallest artifact, then the simpler recipe (dynamic before
static before OpenVINO, full last layer before light); when none is confirmed, first to the candidate whose interval
reaches least far (the same speed, fewer changed answers). The winner is copied to --out with tuning.md /
tuning.svg beside it and the choice recorded in its manifest (`tuning`).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.artifact import (
    MODEL_CARD,
    TOKENIZER,
    LongText,
    is_full_range_u8s8,
    read_manifest,
    write_manifest,
)
from ..core.cpu import cpu_info
from ..core.errors import AccuracyBudgetError, EdgebertError, InputError
from ..core.files import atomic_directory, check_writable, sha256_file, temporary_directory
from ..core.measurements import TunedCandidate, Tuning
from ..core.timing import measure_interleaved, median_ms, synthetic_batch
from ..data.text import TextDataset
from ..modeling.checkpoint import encoder_layers, read_checkpoint_meta
from ..tasks import Encoded, task_class, task_for, task_of
from .accuracy_budget import confirms, within
from .agreement import changed_bound, check_pool, evidence_name
from .config import ExportConfig, TuneConfig
from .fleet import variant_kind, variant_rank
from .model_card import model_card
from .recipes import quantization_for_cpu, quantization_from_recipe
from .tune_report import pareto_front, write_report

TUNE_RULE = (
    "within --max-drop and confirmed by the drop's 95% interval where any candidate is; then the fastest on real "
    "texts, timings whose round spreads overlap the fastest's being ties, won by the smallest artifact, then the "
    "simpler recipe (when none is confirmed, ties go first to the interval that reaches least far)"
)
ENGINE_SIMPLICITY = ("dynamic", "static", "openvino", "openvino-bf16")


@dataclasses.dataclass
class Plan:
    name: str
    checkpoint: Path
    layers: int
    config: ExportConfig


def tune_artifact(
    teacher: Path,
    students: list[Path],
    out: Path,
    config: TuneConfig,
    *,
    eval_data: TextDataset | None,
    calibration_data: TextDataset | None = None,
    coverage_data: Sequence[TextDataset] = (),
    test_data: TextDataset | None = None,
    agreement_data: TextDataset | None = None,
    force: bool = False,
    progress: bool = True,
) -> Tuning:
    say = (lambda message: print(message, file=sys.stderr)) if progress else (lambda _: None)
    teacher, out = Path(teacher), Path(out)
    sources = tuple(d.source for d in (eval_data, calibration_data, test_data, agreement_data) if d)
    check_writable(out, force, inputs=(teacher, *students, *sources))
    teacher_meta = read_checkpoint_meta(teacher)
    check_tunable(teacher_meta, eval_data, agreement_data)
    if config.long_text is None:  # every candidate, students too, reads long texts as the teacher was trained to
        config = dataclasses.replace(config, long_text=LongText(teacher_meta.trained_long_text))
    checkpoints = _named_checkpoints(teacher, [Path(s) for s in students])
    info = cpu_info()
    this_isa, cpu_model = info.isa, info.model
    measuring = config.target in (None, this_isa)
    plans = candidate_plans(checkpoints, config, config.target or this_isa, calibration_data, timed=measuring)
    refuse_unfaithful_scoring(plans, info, config.target)

    from ..runtime import Classifier

    with temporary_directory("edgebert-tune-") as tmp:
        say("building the teacher's fp32 reference")
        reference_plan = Plan("teacher/fp32", teacher, _layers(teacher), _export_config(None, this_isa, False, config))
        data = _CandidateData(eval_data, calibration_data, coverage_data, test_data)
        reference = _export(reference_plan, Path(tmp) / "reference", eval_data, None, coverage_data)
        teacher_score = reference.manifest.evaluation.score
        reference_model = Classifier.load(reference.out)
        scoring = Scoring(task_of(teacher_meta), eval_data, reference_model)
        confirm = drop_interval_on(agreement_data, reference_model, scoring.task, say)
        results, built, loaded = _build_candidates(plans, Path(tmp), scoring, confirm, config, data, say)
        for candidate in results.values():
            candidate.measured = measuring and candidate.name in loaded
        if measuring:
            say(f"timing {len(loaded)} candidates on this CPU ({cpu_model}, {this_isa}), interleaved")
            for name, timing in time_candidates(loaded, eval_data.texts[: config.real_texts], config).items():
                c = results[name]
                c.real_text_ms, c.real_text_spread_ms, c.p50_1x128_ms = timing
        chosen, reason, confirmed = choose(list(results.values()), config.max_drop_points, measuring=measuring)
        if measuring:
            reason += f"; real texts timed {config.call_size} per call"
        else:
            reason += (
                f"; chosen for --target {config.target} from the recipe table without timing (this CPU: {this_isa})"
            )
        for name in pareto_front(list(results.values())):
            results[name].on_front = True
        cpu = f"{cpu_model} ({this_isa})" if measuring else f"--target {config.target}"
        tuning = Tuning(
            chosen, reason, cpu, config.max_drop_points, teacher_score, list(results.values()), TUNE_RULE, confirmed
        )
        tuning.test = read_manifest(built[chosen]).test_evaluation  # reported only: chosen without it
        tuning.evidence = confirm.name if confirm else f"paired bootstrap on {eval_data.source}"
        _save(built[chosen], out, tuning, force)
    say(f"chose {chosen}: {reason}")
    return tuning


@dataclasses.dataclass(frozen=True)
class _CandidateData:
    eval: TextDataset | None
    calibration: TextDataset | None
    coverage: Sequence[TextDataset]
    test: TextDataset | None


def _build_candidates(plans, tmp: Path, scoring, confirm, config: TuneConfig, data: _CandidateData, say):
    """Export and score every plan: (results by name, built directories, loaded models). One candidate failing
    (e.g. fusion) does not stop the others; it is kept with its error."""
    from ..runtime import Classifier

    built: dict[str, Path] = {}
    loaded: dict[str, Classifier] = {}  # each candidate loaded (and verified) once: scored, then timed
    results: dict[str, TunedCandidate] = {}
    for i, plan in enumerate(plans, 1):
        say(f"[{i}/{len(plans)}] building {plan.name}")
        calibration = data.calibration if plan.config.needs_calibration else None
        candidate = results[plan.name] = TunedCandidate(plan.name, plan.layers, 0.0, measured=False)
        try:
            report = _export(plan, tmp / f"c{i}", data.eval, calibration, data.coverage, data.test)
        except EdgebertError as exc:
            candidate.error = str(exc)
            say(f"    skipped: {exc}")
            continue
        built[plan.name], loaded[plan.name] = report.out, Classifier.load(report.out)
        drop_points, drop_ci95 = scoring.drop(loaded[plan.name])
        candidate.drop_points = round(drop_points, 4)
        candidate.drop_ci95 = confirm(loaded[plan.name]) if confirm else drop_ci95
        candidate.confirmed = confirms(candidate.drop_points, candidate.drop_ci95, config.max_drop_points)
        candidate.size_bytes = report.size_bytes
    return results, built, loaded


def check_tunable(teacher_meta, eval_data: TextDataset | None, agreement_data: TextDataset | None) -> None:
    if eval_data is None:
        raise InputError("--tune scores every candidate's accuracy: add --eval FILE (e.g. --eval bbc_news:dev).")
    task = teacher_meta.task
    if not task_class(task).tunable:
        raise InputError(f"--tune ranks text classifiers; for this {task} model use --int8 --max-drop POINTS.")
    if agreement_data is not None:  # refuses tasks whose metric the changed-label share does not bound, up front
        task_of(teacher_meta).changed_labels(np.zeros((1, 2)), np.zeros((1, 2)))


def refuse_unfaithful_scoring(plans: list[Plan], cpu, target: str | None) -> None:
    """Candidates are scored by running them here: a target's full-range INT8 (VNNI, arm64) on an x86 CPU without
    VNNI would be scored through saturating kernels, so its accuracy here is not the target's."""
    if not cpu.saturates_u8s8:
        return
    unfaithful = [p.name for p in plans if is_full_range_u8s8(p.config.backend, p.config.quantization)]
    if unfaithful:
        raise InputError(
            f"--tune --target {target} scores each candidate by running it on this CPU ({cpu.isa}, no VNNI), whose INT8 "
            f"kernels saturate on that target's full-range weights ({', '.join(unfaithful)}): the scores would not be "
            f"the target's. Tune on a CPU with VNNI or on the target itself, or export for it without tuning: "
            f"`edgebert export CHECKPOINT --int8 --target {target} --max-drop POINTS`."
        )


def drop_interval_on(pool: TextDataset | None, reference, task, say):
    """--agreement POOL: interval(candidate) -> ±(95% upper end of the share of pool texts whose label the candidate
    changes against the teacher's fp32 graph), which bounds the accuracy change on texts like the pool's; a student
    that agrees with its teacher on 12,000 texts is confirmed where 1,736 labelled ones cannot tell. None: no pool."""
    if pool is None:
        return None
    check_pool(pool)
    say(f"agreement pool: {len(pool)} unlabelled texts from {pool.source}, the teacher's fp32 graph as reference")
    teacher = reference.predict_logits(pool.texts, pool.pairs)

    def interval(model) -> list[float]:
        return changed_bound(task.changed_labels(teacher, model.predict_logits(pool.texts, pool.pairs)), say)

    interval.name = evidence_name(pool, "the teacher's fp32 graph")
    return interval


class Scoring:
    """A candidate's drop against the teacher's fp32 graph on --eval, in the task's own metric (accuracy, or micro-F1
    for multi-label models at the teacher's thresholds) with its 95% paired interval; every model run as an app runs
    it (Classifier.predict_logits: its long-text policy, one text per call where INT8 scales are per call)."""

    def __init__(self, task, data: TextDataset, reference) -> None:
        targets = Encoded([], [], task.targets(data))  # the budget's score and interval read targets only
        self.score, self.interval = task.budget_score(targets), task.budget_interval(targets)
        self.task, self.data = task, data
        self.reference = self.logits(reference)

    def logits(self, model) -> np.ndarray:
        return model.predict_logits(self.data.texts, self.data.pairs)

    def drop(self, model) -> tuple[float, list[float]]:
        candidate = self.logits(model)
        points = 100 * (self.score(self.reference) - self.score(candidate))
        return points, self.interval(self.reference, candidate)


def candidate_plans(
    checkpoints: dict[str, Path], config: TuneConfig, isa: str, calibration: TextDataset | None, *, timed: bool
) -> list[Plan]:
    import importlib.util

    engines = [e for e in config.engines if e == "dynamic" or calibration is not None]
    if importlib.util.find_spec("openvino") is None:
        engines = [e for e in engines if not e.startswith("openvino")]
    if not (timed and cpu_info().native_bf16):  # a candidate this CPU cannot run natively is never built
        engines = [e for e in engines if e != "openvino-bf16"]
    if not engines:
        raise InputError(
            f"None of --tune-engines {','.join(config.engines)} can be built here: static and openvino need --calib "
            "(and openvino the [openvino] extra). Add --calib FILE or include 'dynamic'."
        )
    if not timed:  # for another CPU: keep the table's best engine only
        engines = [_table_choice(engines, isa)]
    plans = []
    for label, checkpoint in checkpoints.items():
        meta = read_checkpoint_meta(checkpoint)
        layers = _layers(checkpoint)
        light_options = [False, True] if config.light_last_layer is None else [config.light_last_layer]
        if not task_for(meta.task, meta.labels).allows_light_last_layer(meta.pooling):
            light_options = [False]
        for engine in engines:
            for light in light_options:
                name = f"{label}/{engine}{'+light' if light else ''}"
                plans.append(Plan(name, checkpoint, layers, _export_config(engine, isa, light, config)))
    return plans


def choose(candidates: list[TunedCandidate], max_drop: float, *, measuring: bool) -> tuple[str, str, bool]:
    """(name, reason, confirmed) by TUNE_RULE; without timings, the shallowest, then the smallest. Raises
    AccuracyBudgetError naming the closest candidate when none is within the budget."""
    ok = [c for c in candidates if c.error is None]
    inside = [c for c in ok if within(c.drop_points, max_drop)]
    if not inside:
        best = min(ok, key=lambda c: c.drop_points, default=None)
        closest = f"; the closest was {best.name} at {best.drop_points:.2f} points" if best else ""
        raise AccuracyBudgetError(
            f"No candidate kept the accuracy drop within {max_drop} points{closest}. Raise --max-drop, train a "
            "deeper student, or export with --int8 --max-drop to keep sensitive layers in fp32."
        )
    confirmed = [c for c in inside if c.confirmed]
    pool = confirmed or inside
    caveat = "" if confirmed else f"; NOT confirmed: every interval reaches past {max_drop} pts on this eval set"
    if not measuring:
        winner = min(pool, key=lambda c: (c.layers, c.size_bytes or 0))
        return (
            winner.name,
            f"shallowest within {max_drop} pts ({winner.layers} layers, {_drop(winner)}){caveat}",
            bool(confirmed),
        )
    fastest = min(pool, key=lambda c: c.real_text_ms)
    ties = [c for c in pool if _spread(c)[0] <= _spread(fastest)[1]]
    # unconfirmed ties go first to the candidate whose interval reaches least far (it changed the fewest answers)
    reach = (lambda c: ()) if confirmed else (lambda c: (c.drop_ci95[1] if c.drop_ci95 else c.drop_points,))
    winner = min(ties, key=lambda c: (*reach(c), c.size_bytes or 0, _simplicity(c.name)))
    reason = f"fastest on real texts within {max_drop} pts ({winner.real_text_ms:.2f} ms/text, {_drop(winner)})"
    if len(ties) > 1:
        others = ", ".join(c.name for c in ties if c is not winner)
        smallest = sum(c.size_bytes == winner.size_bytes for c in ties) == 1
        why = (
            f"the smallest, {(winner.size_bytes or 0) / 1e6:.1f} MB" if smallest else "as small, and the simpler recipe"
        )
        if not confirmed and sum(reach(c) == reach(winner) for c in ties) == 1:
            why = f"its interval reaches least far ({reach(winner)[0]:.2f} pts: the fewest changed answers)"
        reason = (
            f"tied on real-text time with {others} (round spreads overlap; fastest {fastest.real_text_ms:.2f} "
            f"ms/text): {why}, {winner.real_text_ms:.2f} ms/text, {_drop(winner)}"
        )
    return winner.name, reason + caveat + _faster_unconfirmed(inside, winner), bool(confirmed)


def _faster_unconfirmed(inside: list[TunedCandidate], winner: TunedCandidate) -> str:
    """Name the fastest candidate that was passed over only because its interval could not be confirmed: a student
    that disagrees with the teacher on many rows can score as well and still have a wide interval on a small set."""
    passed_over = [c for c in inside if not c.confirmed and _spread(c)[1] < _spread(winner)[0]]
    if not passed_over:
        return ""
    c = min(passed_over, key=lambda c: c.real_text_ms)
    return (
        f"; faster but not confirmed: {c.name} ({c.real_text_ms:.2f} ms/text, {_drop(c)}): a larger --eval set "
        f"can confirm it, or export that checkpoint on its own to take it"
    )


def _drop(c: TunedCandidate) -> str:
    interval = f" [{c.drop_ci95[0]:.2f}, {c.drop_ci95[1]:.2f}]" if c.drop_ci95 else ""
    return f"drop {c.drop_points:.2f}{interval}"


def _spread(c: TunedCandidate) -> list[float]:
    return c.real_text_spread_ms or [c.real_text_ms, c.real_text_ms]


def _simplicity(name: str) -> tuple[int, bool]:
    engine = name.split("/")[-1]
    base = engine.removesuffix("+light")
    rank = ENGINE_SIMPLICITY.index(base) if base in ENGINE_SIMPLICITY else len(ENGINE_SIMPLICITY)
    return rank, engine.endswith("+light")


def time_candidates(
    models: dict[str, object], texts: list[str], config: TuneConfig
) -> dict[str, tuple[float, list[float], float]]:
    """(real-text ms per text, its [fastest, slowest] per-round median, 1x128 p50 ms) per loaded candidate
    (Classifier), all timed in the same interleaved rounds."""
    runners: dict[str, Callable[[], object]] = {}
    for name, model in models.items():
        feed = synthetic_batch(1, 128, vocab_size=model.encoder.tokenizer.get_vocab_size())
        runners[f"{name}|real"] = lambda m=model: [
            m.predict_proba(texts[i : i + config.call_size]) for i in range(0, len(texts), config.call_size)
        ]
        runners[f"{name}|1x128"] = lambda m=model, f=feed: m.backend.run(*f)
    samples = measure_interleaved(runners, rounds=config.rounds, seconds_per_round=config.seconds_per_round, warmup=1)
    timings = {}
    for name in models:
        real = samples[f"{name}|real"]
        rounds = [median_ms([r]) / len(texts) for r in real]
        timings[name] = (median_ms(real) / len(texts), [min(rounds), max(rounds)], median_ms(samples[f"{name}|1x128"]))
    return timings


def _export(plan: Plan, out: Path, eval_data: TextDataset, calibration: TextDataset | None, coverage, test=None):
    from .pipeline import export_artifact

    return export_artifact(
        plan.checkpoint,
        out,
        plan.config,
        eval_data=eval_data,
        calibration_data=calibration,
        coverage_data=coverage,
        test_data=test,
        progress=False,
    )


def _export_config(engine: str | None, isa: str, light: bool, config: TuneConfig | None = None) -> ExportConfig:
    """engine None: the fp32 graph every candidate is scored against."""
    trim = {"trim_vocabulary": config.trim_vocabulary, "trim_keep_scripts": config.trim_keep_scripts} if config else {}
    trim.update({"long_text": config.long_text} if config else {})  # every candidate reads long texts the same way
    if engine is None:
        return ExportConfig(**trim)
    if engine.startswith("openvino"):
        quantization = quantization_from_recipe("openvino-int8")
        precision = "bf16" if engine == "openvino-bf16" else "f32"
        return ExportConfig(
            backend="openvino", quantization=quantization, light_last_layer=light, openvino_precision=precision, **trim
        )
    quantization = quantization_for_cpu(isa)
    if engine == "static":
        quantization = quantization.with_options(mode="static")
    return ExportConfig(quantization=quantization, light_last_layer=light, **trim)


def _table_choice(engines: list[str], isa: str) -> str:
    """The engine the fleet table (export/fleet.py) ranks first for `isa` among those that can be built here."""
    configs = {e: _export_config(e, isa, light=False) for e in engines if e in ("dynamic", "openvino")}
    if not configs:
        raise InputError(
            "--target chooses between 'dynamic' and 'openvino' from the recipe table (static is only chosen by "
            "timing on this CPU): include one of them in --tune-engines."
        )
    return min(configs, key=lambda e: variant_rank(variant_kind(configs[e].backend, configs[e].quantization), isa))


def _named_checkpoints(teacher: Path, students: list[Path]) -> dict[str, Path]:
    """teacher, then students named by depth; a student must share the teacher's tokenizer, labels and task."""
    meta = read_checkpoint_meta(teacher)
    named = {"teacher": teacher}
    tokenizer = sha256_file(teacher / TOKENIZER)
    for student in students:
        s = read_checkpoint_meta(student)
        if (s.task, s.labels, s.max_length) != (meta.task, meta.labels, meta.max_length):
            raise InputError(
                f"Student {student} is not a student of {teacher}: its task, labels or max length differ. "
                "Make it with `edgebert distill TEACHER --layers N`."
            )
        if sha256_file(student / TOKENIZER) != tokenizer:
            raise InputError(
                f"Student {student} uses a different tokenizer than {teacher}; a student must keep the teacher's "
                "(`edgebert distill` does). Re-distill it from this teacher."
            )
        name = f"student{_layers(student)}"
        while name in named:
            name += "b"
        named[name] = student
    return named


def _layers(checkpoint: Path) -> int:
    layers = encoder_layers(checkpoint)
    if layers is None:
        raise InputError(f"{checkpoint}/config.json has no readable num_hidden_layers. Re-run `edgebert train`.")
    return layers


def _save(winner: Path, out: Path, tuning: Tuning, force: bool) -> None:
    manifest = read_manifest(winner)
    with atomic_directory(out, force) as staging:
        for name in manifest.files:
            shutil.copyfile(winner / name, staging / name)
        write_report(staging, tuning)
        manifest.tuning = tuning
        (staging / MODEL_CARD).write_text(model_card(manifest), encoding="utf-8")  # now saying how it was chosen
        write_manifest(staging, manifest)  # re-hashes: tuning.md and tuning.svg are part of the bundle
