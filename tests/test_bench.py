"""bench: statistics on fake timings, history regressions, and a small real run (also without torch)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgebert.bench.config import BenchConfig
from edgebert.bench.report import append_history, compare_history, read_history, write_report
from edgebert.bench.run import parse_shapes, run_bench
from edgebert.cli import main
from edgebert.core.errors import InputError
from edgebert.core.timing import measure_interleaved, summarize
from edgebert.data.text import load_file

from .conftest import BLOCK_TORCH


def test_summarize_on_known_timings():
    samples = list(range(1, 101))  # 1..100 ms
    stats = summarize(samples, batch_size=4, rounds=[samples[:50], samples[50:]])
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.throughput == pytest.approx(4 * 100 / (5050 / 1000))  # 400 sequences in 5.05 s
    assert stats.round_medians_ms == [25.5, 75.5]
    with pytest.raises(ValueError):
        summarize([], 1)


def test_interleaved_rounds_rotate_and_give_each_runner_its_budget():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = measure_interleaved(runners, rounds=3, seconds_per_round=0.01, warmup=1)
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(len(r) >= 2 for rounds in samples.values() for r in rounds)
    runs = [calls[3]]  # the order runners took turns in, after one warm-up call each
    for name in calls[4:]:
        if name != runs[-1]:
            runs.append(name)
    assert runs == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # each round starts one later


def test_parse_shapes():
    assert parse_shapes("1x16,32X128") == [(1, 16), (32, 128)]
    for bad in ("1by16", "0x16", "1x2", "1x600"):
        with pytest.raises(InputError):
            parse_shapes(bad)


def _entry(p50: float, accuracy: float) -> dict:
    return {
        "time": "t",
        "isa": "avx2",
        "threads": 2,
        "latency": {"int8@1x128": {"p50_ms": p50, "throughput": 1000 / p50}},
        "accuracy": {"int8": accuracy},
    }


def test_compare_flags_planted_latency_regression():
    table, regressions = compare_history([_entry(10, 0.95), _entry(10.4, 0.95), _entry(10.2, 0.95), _entry(12.0, 0.95)])
    assert len(regressions) == 1 and "latency regression: int8@1x128" in regressions[0]
    assert "+17.6%" in table  # 12.0 vs median 10.2


def test_compare_flags_planted_accuracy_drift_and_passes_noise():
    _, regressions = compare_history([_entry(10, 0.95), _entry(10, 0.94)], max_accuracy_drop=0.5)
    assert regressions == ["accuracy drift: int8 0.9400 vs 0.9500 (1.00 pts > 0.5 pts)"]
    _, none = compare_history([_entry(10, 0.95), _entry(10.5, 0.948)])
    assert none == []


def test_compare_cli_exit_codes(tmp_path, capsys):
    history = tmp_path / "h.jsonl"
    history.write_text("".join(json.dumps(e) + "\n" for e in [_entry(10, 0.95), _entry(10, 0.95)]))
    assert main(["bench", "--compare", str(history)]) == 0
    with history.open("a") as f:
        f.write(json.dumps(_entry(20, 0.95)) + "\n")
    assert main(["bench", "--compare", str(history)]) == 1
    assert "REGRESSION" in capsys.readouterr().err
    assert main(["bench", "--compare", str(tmp_path / "missing.jsonl")]) == 2


@pytest.fixture(scope="module")
def real_report(tiny_artifact, tiny_int8_artifact, tiny_checkpoint, data_dir):
    config = BenchConfig(shapes=[(1, 16), (4, 32)], rounds=2, seconds_per_round=0.05, real_text_batch=8)
    data = load_file(data_dir / "dev.jsonl")
    return run_bench([tiny_artifact, tiny_int8_artifact], config, reference=tiny_checkpoint, data=data, progress=False)


def test_real_run_measures_every_variant(real_report):
    assert list(real_report["variants"]) == ["tiny", "fp32", "int8"]
    assert set(real_report["latency"]) == {"1x16", "4x32", "real-text"}
    for by_variant in real_report["latency"].values():
        for stats in by_variant.values():
            assert 0 < stats["p50_ms"] <= stats["p99_ms"] and stats["throughput"] > 0
    cold = real_report["variants"]["int8"]["cold_start"]
    assert cold["process_wall_ms"] > cold["import_load_predict_ms"] > 0 and cold["peak_rss_mb"] > 10
    assert "cold_start" not in real_report["variants"]["tiny"]  # a torch checkpoint has no torch-free cold start


def test_real_run_drift_matches_independent_computation(real_report, tiny_artifact, data_dir):
    from edgebert import Classifier

    drift = real_report["accuracy"]["drift"]
    assert drift["fp32"]["max_abs_logit_diff"] < 1e-3 and drift["fp32"]["agreement"] == 1.0  # fp32 graph == torch
    data = load_file(data_dir / "dev.jsonl")
    predicted = Classifier.load(tiny_artifact).predict(data.texts)
    accuracy = np.mean([p.label == y for p, y in zip(predicted, data.labels, strict=True)])
    assert drift["fp32"]["metric"] == "accuracy" and drift["fp32"]["candidate_score"] == pytest.approx(accuracy)
    assert len(real_report["flips"]["int8"]) == drift["int8"]["flips"]
    assert drift["fp32"]["drop_ci95"] == [0.0, 0.0]  # identical predictions: nothing to resample
    low, high = drift["int8"]["score_ci95"]
    assert low <= drift["int8"]["candidate_score"] <= high and drift["int8"]["points_per_text"] == 100 / 30


def test_report_files_and_history(real_report, tmp_path):
    files = {p.name for p in write_report(real_report, tmp_path / "out")}
    assert {"report.json", "report.md", "flips.jsonl", "latency_by_shape.png", "latency_vs_accuracy.png"} <= files
    assert (tmp_path / "out" / "latency_by_shape.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1x16 | int8 |" in (tmp_path / "out" / "report.md").read_text()
    history = tmp_path / "history.jsonl"
    append_history(history, real_report)
    append_history(history, real_report)
    entries = read_history(history)
    assert len(entries) == 2 and "int8@1x16" in entries[0]["latency"]
    assert compare_history(entries)[1] == []


def test_bench_cli_runs_without_torch(tiny_int8_artifact, tiny_artifact, data_dir, tmp_path):
    code = f"""
        from edgebert.cli import main
        rc = main(["bench", {str(tiny_int8_artifact)!r}, "--reference", {str(tiny_artifact)!r}, "--data", {str(data_dir / "dev.jsonl")!r},
                   "--shapes", "1x16", "--rounds", "1", "--seconds", "0.05", "--no-cold-start", "--quiet",
                   "--out", {str(tmp_path / "out")!r}, "--history", {str(tmp_path / "h.jsonl")!r}])
        assert "torch" not in sys.modules, "bench imported torch"
        sys.exit(rc)
        """
    import textwrap

    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "report.json").is_file() and (tmp_path / "h.jsonl").is_file()


def test_bench_user_errors(tmp_path, capsys):
    assert main(["bench"]) == 2
    assert main(["bench", str(tmp_path / "missing")]) == 2
    assert "edgebert: error:" in capsys.readouterr().err


def test_max_slowdown_is_a_fraction_and_a_ratio_is_refused(tmp_path, capsys):
    from edgebert.cli import main

    history = tmp_path / "h.jsonl"
    history.write_text("")
    assert main(["bench", "--compare", str(history), "--max-slowdown", "1.10"]) == 2
    assert "0.10 allows 10%" in capsys.readouterr().err
