"""`export --tune`: candidates built and timed, the fastest within the budget kept, the choice recorded."""

from __future__ import annotations

import json
import shutil

import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.cpu import cpu_info
from edgebert.core.errors import AccuracyBudgetError, InputError
from edgebert.core.measurements import TunedCandidate
from edgebert.data.text import load_file
from edgebert.export.config import TuneConfig
from edgebert.export.tune import choose, tune_artifact
from edgebert.export.tune_report import pareto_front

from .conftest import cli_error

QUICK = {"engines": ("dynamic",), "rounds": 1, "seconds_per_round": 0.05, "real_texts": 8}


def _candidate(
    name: str, ms: float, drop: float, layers: int = 6, *, spread: float = 0.0, size: int = 1, ci=None
) -> TunedCandidate:
    ci95 = ci or [drop, drop]
    return TunedCandidate(
        name,
        layers,
        drop,
        True,
        real_text_ms=ms,
        p50_1x128_ms=ms,
        drop_ci95=ci95,
        confirmed=ci95[1] <= 0.5,  # the tests below use a 0.5 budget where confirmation matters
        real_text_spread_ms=[ms - spread, ms + spread],
        size_bytes=size,
    )


def test_tuner_picks_the_faster_candidate_within_the_budget():
    slow, fast = _candidate("t/slow", 20.0, 0.0), _candidate("t/fast", 10.0, 0.2)
    assert choose([slow, fast], 0.5, measuring=True)[0] == "t/fast"
    assert choose([slow, fast], 0.1, measuring=True)[0] == "t/slow"  # fast is over budget now


def test_tuner_counts_overlapping_timings_as_ties_won_by_the_smaller_artifact():
    # the case: static+light 15.35 vs dynamic+light 15.37 ms/text inside the noise, 53.7 vs 17.5 MB
    static = _candidate("t/static+light", 15.35, 0.0, spread=0.2, size=53_700_000)
    dynamic = _candidate("t/dynamic+light", 15.37, 0.0, spread=0.2, size=17_500_000)
    name, reason, confirmed = choose([static, dynamic], 0.5, measuring=True)
    assert name == "t/dynamic+light" and "tied on real-text time with t/static+light" in reason and confirmed
    apart = _candidate("t/static+light", 12.0, 0.0, spread=0.2, size=53_700_000)  # beyond the spread: speed wins
    assert choose([apart, dynamic], 0.5, measuring=True)[0] == "t/static+light"
    same_size = _candidate("t/static", 15.36, 0.0, spread=0.2, size=17_500_000)
    assert choose([same_size, dynamic], 0.5, measuring=True)[0] == "t/dynamic+light"  # then the simpler recipe
    plain = _candidate("t/dynamic", 15.38, 0.0, spread=0.2, size=17_500_000)
    assert choose([dynamic, plain], 0.5, measuring=True)[0] == "t/dynamic"


def test_tuner_prefers_a_confirmed_candidate_to_a_faster_one_whose_interval_crosses_the_budget():
    fast = _candidate("t/fast", 10.0, 0.3, ci=[-0.3, 0.9])  # the point estimate passes, the interval does not
    slow = _candidate("t/slow", 20.0, 0.0)
    name, reason, confirmed = choose([fast, slow], 0.5, measuring=True)
    assert name == "t/slow" and confirmed and "NOT confirmed" not in reason
    assert "faster but not confirmed: t/fast (10.00 ms/text, drop 0.30 [-0.30, 0.90])" in reason  # what to do next
    over = _candidate("t/over", 5.0, 0.8, ci=[0.1, 1.5])  # over the budget on its point estimate: not offered
    assert "t/over" not in choose([over, slow], 0.5, measuring=True)[1]
    name, reason, confirmed = choose([fast], 0.5, measuring=True)  # nothing confirmed: say so plainly
    assert name == "t/fast" and not confirmed and "NOT confirmed" in reason


def test_tuner_without_timings_takes_the_shallowest_within_budget():
    deep, shallow = _candidate("deep", 0, 0.0, 6), _candidate("shallow", 0, 0.3, 3)
    assert choose([deep, shallow], 0.5, measuring=False)[0] == "shallow"
    assert choose([deep, shallow], 0.2, measuring=False)[0] == "deep"


def test_budget_no_candidate_meets_is_an_error_naming_the_closest():
    with pytest.raises(AccuracyBudgetError, match="within 0.1 points; the closest was b at 0.50"):
        choose([_candidate("a", 1, 2.0), _candidate("b", 2, 0.5)], 0.1, measuring=True)


def test_pareto_front_keeps_candidates_nothing_beats_on_both_axes():
    cands = [_candidate("a", 10, 0.0), _candidate("b", 5, 0.5), _candidate("c", 12, 0.6), _candidate("d", 5, 0.4)]
    assert pareto_front(cands) == ["a", "d"]


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory, tiny_checkpoint, data_dir):
    out = tmp_path_factory.mktemp("student") / "s1"
    args = ["distill", str(tiny_checkpoint), "--layers", "1", "--data", str(data_dir / "train.jsonl")]
    args += ["--eval", str(data_dir / "dev.jsonl"), "--out", str(out), "--epochs", "2", "--lr", "5e-3", "--quiet"]
    assert main(args) == 0
    return out


def test_tune_builds_times_and_records_the_choice(tiny_checkpoint, tiny_student, data_dir, tmp_path):
    dev = load_file(data_dir / "dev.jsonl")
    # any candidate fits, so the fastest must win; timed one text per call, as an app classifying texts one by one
    config = TuneConfig(max_drop_points=100 - 1e-9, call_size=1, **QUICK)
    test = load_file(data_dir / "train.jsonl").subset(range(40), "held-out")  # any labelled texts will do here
    tuning = tune_artifact(
        tiny_checkpoint, [tiny_student], tmp_path / "t", config, eval_data=dev, test_data=test, progress=False
    )
    names = [c.name for c in tuning.candidates]
    assert names == ["teacher/dynamic", "teacher/dynamic+light", "student1/dynamic", "student1/dynamic+light"]
    assert all(c.measured and c.real_text_ms > 0 and c.p50_1x128_ms > 0 for c in tuning.candidates)
    fastest = min(tuning.candidates, key=lambda c: c.real_text_ms)
    assert tuning.chosen == fastest.name or "tied on real-text time" in tuning.reason
    assert tuning.reason.endswith("real texts timed 1 per call")
    assert all(c.size_bytes > 0 and c.drop_ci95 and c.real_text_spread_ms for c in tuning.candidates)
    assert any(c.on_front for c in tuning.candidates if c.name == tuning.chosen)
    clf = Classifier.load(tmp_path / "t")  # checksums cover the report files too
    assert clf.manifest.tuning.chosen == tuning.chosen and cpu_info().isa in clf.manifest.tuning.cpu
    assert {"tuning.md", "tuning.svg"} <= set(clf.manifest.files)
    report = (tmp_path / "t" / "tuning.md").read_text()
    assert tuning.chosen in report and "On held-out held-out (40 rows" in report and tuning.test.n == 40
    assert (tmp_path / "t" / "tuning.svg").read_text().startswith("<svg")
    assert (clf.manifest.optimization.last_layer == "cls_only") == tuning.chosen.endswith("+light")


def test_tune_for_another_cpu_chooses_from_the_table_without_timing(tiny_checkpoint, data_dir, tmp_path, simulate_cpu):
    simulate_cpu("avx512-vnni")  # the choice for another CPU, made as a VNNI host makes it, on whatever CPU runs this
    config = TuneConfig(target="avx2", light_last_layer=True, max_drop_points=100, **QUICK)
    dev = load_file(data_dir / "dev.jsonl")
    tuning = tune_artifact(tiny_checkpoint, [], tmp_path / "t", config, eval_data=dev, progress=False)
    assert [c.name for c in tuning.candidates] == ["teacher/dynamic+light"]
    assert not tuning.candidates[0].measured and tuning.candidates[0].real_text_ms is None
    assert "--target avx2 from the recipe table without timing" in tuning.reason


def test_tune_for_a_vnni_target_on_a_saturating_cpu_is_refused_before_any_work(
    tiny_checkpoint, data_dir, tmp_path, simulate_cpu
):
    simulate_cpu("avx2")  # scoring arm64's full-range INT8 here would go through saturating kernels
    config = TuneConfig(target="arm64", light_last_layer=True, max_drop_points=100, **QUICK)
    with pytest.raises(InputError, match="kernels saturate on that target's full-range weights"):
        tune_artifact(tiny_checkpoint, [], tmp_path / "t", config, eval_data=load_file(data_dir / "dev.jsonl"))
    assert not (tmp_path / "t").exists()


def test_student_with_another_tokenizer_is_refused(tiny_checkpoint, tiny_student, data_dir, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(tiny_student, odd)
    tokenizer = json.loads((odd / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    first, second = list(vocab)[-2:]
    vocab[first], vocab[second] = vocab[second], vocab[first]  # same size, other ids: another tokenizer
    (odd / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(InputError, match="different tokenizer"):
        tune_artifact(
            tiny_checkpoint, [odd], tmp_path / "t", TuneConfig(**QUICK), eval_data=load_file(data_dir / "dev.jsonl")
        )


def test_tune_flags_that_contradict_it_are_refused(tiny_checkpoint, data_dir, tmp_path, capsys):
    base = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "t"), "--tune"]
    assert "--eval" in cli_error(base, capsys)
    assert "drop --recipe" in cli_error([*base, "--eval", str(data_dir / "dev.jsonl"), "--recipe", "avx2"], capsys)
    assert "--tune-engines" in cli_error(
        [*base, "--eval", str(data_dir / "dev.jsonl"), "--tune-engines", "gpu"], capsys
    )
    assert "--student is a --tune candidate" in cli_error(
        ["export", str(tiny_checkpoint), "--out", str(tmp_path / "x"), "--student", str(tiny_checkpoint)], capsys
    )


def test_engine_sets_that_cannot_be_built_are_refused_before_any_work(tiny_checkpoint, data_dir, tmp_path, capsys):
    base = [
        "export",
        str(tiny_checkpoint),
        "--out",
        str(tmp_path / "t"),
        "--tune",
        "--eval",
        str(data_dir / "dev.jsonl"),
    ]
    assert "static and openvino need --calib" in cli_error([*base, "--tune-engines", "static"], capsys)
    calib = ["--calib", str(data_dir / "train.jsonl")]
    err = cli_error([*base, *calib, "--tune-engines", "static", "--target", "arm64"], capsys)
    assert "include one of them in --tune-engines" in err
    assert not (tmp_path / "t").exists()


def test_tune_confirms_candidates_by_agreement_with_the_teacher_on_an_unlabelled_pool(
    tiny_checkpoint, tiny_student, data_dir, tmp_path
):
    pool = load_file(data_dir / "train.jsonl", label_column=None)
    config = TuneConfig(light_last_layer=False, max_drop_points=100, **QUICK)
    tuning = tune_artifact(
        tiny_checkpoint, [tiny_student], tmp_path / "t", config,
        eval_data=load_file(data_dir / "dev.jsonl"), agreement_data=pool, progress=False,
    )  # fmt: skip
    assert f"({len(pool)} unlabelled texts)" in tuning.evidence and "teacher's fp32" in tuning.evidence
    for candidate in tuning.candidates:
        low, high = candidate.drop_ci95
        assert low == -high and 0 < high <= 100 and candidate.confirmed  # a 100-point budget holds any share
    assert Classifier.load(tmp_path / "t").manifest.tuning.evidence == tuning.evidence


def test_unconfirmed_ties_go_to_the_candidate_that_changed_the_fewest_answers():
    wide = _candidate("teacher/dynamic", 17.2, 0.23, spread=0.3, size=32, ci=[-1.5, 1.5])
    narrow = _candidate("teacher/openvino", 17.6, 0.23, spread=0.5, size=33, ci=[-0.76, 0.76])
    for c in (wide, narrow):
        c.confirmed = False
    name, reason, confirmed = choose([wide, narrow], 0.3, measuring=True)
    assert name == "teacher/openvino" and not confirmed and "reaches least far (0.76 pts" in reason
    for c in (wide, narrow):  # once both are confirmed, the smaller artifact wins the tie as before
        c.confirmed, c.drop_ci95 = True, [0.0, 0.2]
    assert choose([wide, narrow], 0.3, measuring=True)[0] == "teacher/dynamic"
