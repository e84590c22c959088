"""`export --tune`: candidates built and timed, the fastest within the budget kept, the choice recorded."""

from __future__ import annotations

import json
import shutil

import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.artifact import TunedCandidate
from edgebert.core.cpu import cpu_info
from edgebert.core.errors import AccuracyBudgetError, InputError
from edgebert.data.text import load_file
from edgebert.export.config import TuneConfig
from edgebert.export.tune import choose, tune_artifact
from edgebert.export.tune_report import pareto_front

from .test_cli import _error

QUICK = {"engines": ("dynamic",), "rounds": 1, "seconds_per_round": 0.05, "real_texts": 8}


def _candidate(name: str, ms: float, drop: float, layers: int = 6) -> TunedCandidate:
    return TunedCandidate(name, layers, drop, True, real_text_ms=ms, p50_1x128_ms=ms)


def test_tuner_picks_the_faster_candidate_within_the_budget():
    slow, fast = _candidate("slow", 20.0, 0.0), _candidate("fast", 10.0, 0.2)
    assert choose([slow, fast], 0.5, measuring=True)[0] == "fast"
    name, reason = choose([slow, fast], 0.1, measuring=True)  # fast is over budget now
    assert name == "slow" and "next fast 10.00 ms/text, drop 0.20" in reason


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
    config = TuneConfig(max_drop_points=100 - 1e-9, **QUICK)  # any candidate fits: the fastest must win
    tuning = tune_artifact(tiny_checkpoint, [tiny_student], tmp_path / "t", config, eval_data=dev, progress=False)
    names = [c.name for c in tuning.candidates]
    assert names == ["teacher/dynamic", "teacher/dynamic+light", "student1/dynamic", "student1/dynamic+light"]
    assert all(c.measured and c.real_text_ms > 0 and c.p50_1x128_ms > 0 for c in tuning.candidates)
    assert tuning.chosen == min(tuning.candidates, key=lambda c: c.real_text_ms).name
    assert any(c.on_front for c in tuning.candidates if c.name == tuning.chosen)
    clf = Classifier.load(tmp_path / "t")  # checksums cover the report files too
    assert clf.manifest.tuning.chosen == tuning.chosen and cpu_info().isa in clf.manifest.tuning.cpu
    assert {"tuning.md", "tuning.svg"} <= set(clf.manifest.files)
    assert tuning.chosen in (tmp_path / "t" / "tuning.md").read_text()
    assert (tmp_path / "t" / "tuning.svg").read_text().startswith("<svg")
    assert (clf.manifest.optimization.last_layer == "cls_only") == tuning.chosen.endswith("+light")


def test_tune_for_another_cpu_chooses_from_the_table_without_timing(tiny_checkpoint, data_dir, tmp_path):
    other = "avx2" if cpu_info().isa != "avx2" else "arm64"
    # a full-range recipe evaluated on an AVX2 machine may saturate: this test is about the untimed choice, not accuracy
    config = TuneConfig(target=other, light_last_layer=True, max_drop_points=100 - 1e-9, **QUICK)
    dev = load_file(data_dir / "dev.jsonl")
    tuning = tune_artifact(tiny_checkpoint, [], tmp_path / "t", config, eval_data=dev, progress=False)
    assert [c.name for c in tuning.candidates] == ["teacher/dynamic+light"]
    assert not tuning.candidates[0].measured and tuning.candidates[0].real_text_ms is None
    assert f"--target {other} from the recipe table without timing" in tuning.reason


def test_student_with_another_tokenizer_is_refused(tiny_checkpoint, tiny_student, data_dir, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(tiny_student, odd)
    tokenizer = json.loads((odd / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"]["zzzextra"] = len(tokenizer["model"]["vocab"])
    (odd / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(InputError, match="different tokenizer"):
        tune_artifact(
            tiny_checkpoint, [odd], tmp_path / "t", TuneConfig(**QUICK), eval_data=load_file(data_dir / "dev.jsonl")
        )


def test_tune_flags_that_contradict_it_are_refused(tiny_checkpoint, data_dir, tmp_path, capsys):
    base = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "t"), "--tune"]
    assert "--eval" in _error(base, capsys)
    assert "drop --recipe" in _error([*base, "--eval", str(data_dir / "dev.jsonl"), "--recipe", "avx2"], capsys)
    assert "--tune-engines" in _error([*base, "--eval", str(data_dir / "dev.jsonl"), "--tune-engines", "gpu"], capsys)
    assert "--student is a --tune candidate" in _error(
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
    assert "static and openvino need --calib" in _error([*base, "--tune-engines", "static"], capsys)
    calib = ["--calib", str(data_dir / "train.jsonl")]
    err = _error([*base, *calib, "--tune-engines", "static", "--target", "arm64"], capsys)
    assert "include one of them in --tune-engines" in err
    assert not (tmp_path / "t").exists()
