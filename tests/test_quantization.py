"""Static INT8 with calibration, OpenVINO IR, the accuracy budget, and their user errors (tiny models)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.artifact import Manifest, read_manifest
from edgebert.core.errors import AccuracyBudgetError, ArtifactError, InputError
from edgebert.data.text import load_file
from edgebert.export.accuracy_budget import fit_accuracy_budget
from edgebert.export.config import ExportConfig, QuantizationConfig
from edgebert.export.pipeline import export_artifact
from edgebert.export.quantize import QuantUnit, quantizable_units, quantize_dynamic_int8
from edgebert.export.recipes import quantization_for_cpu, quantization_from_recipe
from edgebert.export.summary import format_export_summary
from edgebert.tasks import Encoded, task_for

from .conftest import cli_error


def accuracy_of(y):
    """The accuracy budget's score function of a two-label sequence task."""
    return task_for("sequence", ["a", "b"]).budget_score(Encoded([], [], list(y)))


def _ops(path: Path) -> Counter:
    return Counter(node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node)


@pytest.fixture(scope="module")
def static_artifact(tmp_path_factory, tiny_checkpoint, data_dir) -> Path:
    out = tmp_path_factory.mktemp("static") / "int8"
    config = ExportConfig(quantization=quantization_from_recipe("avx2").with_options(mode="static"))
    export_artifact(
        tiny_checkpoint,
        out,
        config,
        eval_data=load_file(data_dir / "dev.jsonl"),
        calibration_data=load_file(data_dir / "train.jsonl", label_column=None),
        progress=False,
    )
    return out


def test_static_int8_calibrates_activations_and_keeps_head_fp32(static_artifact, tiny_artifact):
    manifest = read_manifest(static_artifact)
    assert manifest.quantization.mode == "static"
    assert manifest.quantization.calibration_texts == 96  # the whole (small) calibration file
    ops = _ops(static_artifact / "model.onnx")
    # calibrated activations: QuantizeLinear nodes with fixed scales (dynamic INT8 has none)
    assert ops["QuantizeLinear"] > 0 and ops["QAttention"] == 2
    # the embedding tables are int8 too (weights only: a lookup has no activation scale to calibrate)
    assert ops["QEmbedLayerNormalization"] == 1 and "EmbedLayerNormalization" not in ops
    head = [n for n in onnx.load(str(static_artifact / "model.onnx")).graph.node if "classifier" in n.name]
    assert head and all(n.op_type in ("Gemm", "MatMul", "Add") for n in head)
    clf, fp32 = Classifier.load(static_artifact), Classifier.load(tiny_artifact)
    texts = ["the team won the match", "shares fell on the market", "new phone chip"]
    assert clf.predict_proba(texts).argmax(1).tolist() == fp32.predict_proba(texts).argmax(1).tolist()


def test_units_group_nodes_by_layer(tiny_artifact, tmp_path):
    units = {u.name: u.nodes for u in quantizable_units(tiny_artifact / "model.onnx", ["MatMul", "Attention"])}
    assert [name for name in units if name.startswith("layer.")] == ["layer.0", "layer.1"]
    # per layer: the fused attention (QKV projection), its output projection, the two FFN MatMuls
    assert len(units["layer.0"]) == len(units["layer.1"]) == 4
    per_node = quantizable_units(tiny_artifact / "model.onnx", ["MatMul"], per_node=True)
    assert [u.name for u in per_node if u.name.startswith("layer.1")] == [
        "layer.1:attention/output/dense/MatMul",
        "layer.1:intermediate/dense/MatMul",
        "layer.1:output/dense/MatMul",
    ]


def test_excluded_layer_stays_fp32(tiny_artifact, tmp_path):
    model = tiny_artifact / "model.onnx"
    layer0 = next(u for u in quantizable_units(model, ["MatMul", "Attention"]) if u.name == "layer.0")
    out = tmp_path / "int8.onnx"
    config = QuantizationConfig(op_types=["MatMul", "Attention"], exclude_nodes=list(layer0.nodes))
    quantize_dynamic_int8(model, out, config)
    ops = _ops(out)
    assert ops["Attention"] == 1 and ops["QAttention"] == 1


def _budget_case(drops_by_fp32_set: dict[frozenset, float]):
    """A fake model family: accuracy depends only on which units are fp32; sensitivity C > A > B."""
    units = [QuantUnit("A", ("a",)), QuantUnit("B", ("b",)), QuantUnit("C", ("c",))]
    y = np.zeros(100, dtype=int)
    reference = np.tile([[1.0, 0.0]], (100, 1))
    error_alone = {"A": 0.2, "B": 0.1, "C": 0.5}
    built = []

    def build(fp32_units):
        built.append(sorted(fp32_units))
        return Path("/".join(sorted(fp32_units)) or "none")

    def logits_of(path, rows):
        fp32 = frozenset(p for p in str(path).split("/") if p != "none")
        quantized = {u.name for u in units} - fp32
        logits = reference.copy()
        if rows is not None:  # sensitivity probe: one unit quantized alone, on a sample of rows
            assert len(quantized) == 1
            logits[:, 1] = error_alone[next(iter(quantized))]
            return logits[rows]
        logits[: round(drops_by_fp32_set[fp32])] = [0.0, 1.0]  # the first N of 100 rows go wrong: N points
        return logits

    return units, build, logits_of, reference, y, built


def test_budget_returns_most_sensitive_layers_until_met():
    drops = {frozenset(): 5.0, frozenset({"C"}): 2.0, frozenset({"C", "A"}): 0.0}
    units, build, logits_of, reference, y, _ = _budget_case(drops)
    _, result = fit_accuracy_budget(units, build, logits_of, reference, accuracy_of(y), 1.0)
    assert result.fp32_units == ["C", "A"] and result.fp32_nodes == ["c", "a"]
    assert result.drop_points == 0.0 and [s.drop_points for s in result.steps] == pytest.approx([5.0, 2.0, 0.0])
    assert max(result.sensitivity, key=result.sensitivity.get) == "C"


def test_budget_met_first_time_builds_once():
    units, build, logits_of, reference, y, built = _budget_case({frozenset(): 0.0})
    _, result = fit_accuracy_budget(units, build, logits_of, reference, accuracy_of(y), 0.3)
    assert built == [[]] and result.fp32_units == [] and result.sensitivity == {}


def _interval(y):
    return task_for("sequence", ["a", "b"]).budget_interval(Encoded([], [], list(y)))


def test_budget_keeps_going_while_the_point_estimate_passes_but_the_interval_does_not():
    # one text of 100 wrong: a drop of 1.0 point meets --max-drop 1.0, but its interval reaches to about 3
    drops = {frozenset(): 1.0, frozenset({"C"}): 1.0, frozenset({"C", "A"}): 0.0}
    units, build, logits_of, reference, y, _ = _budget_case(drops)
    _, point_only = fit_accuracy_budget(units, build, logits_of, reference, accuracy_of(y), 1.0)
    assert point_only.fp32_units == [] and point_only.confirmed is None
    _, result = fit_accuracy_budget(units, build, logits_of, reference, accuracy_of(y), 1.0, interval=_interval(y))
    assert result.steps[0].drop_ci95[1] > 1.0 and result.fp32_units == ["C", "A"]
    assert result.confirmed and result.drop_ci95 == [0.0, 0.0]


def test_budget_that_cannot_be_confirmed_keeps_the_first_within_it_and_says_so():
    drops = {frozenset(): 1.0, frozenset({"C"}): 1.0, frozenset({"C", "A"}): 1.0}
    units, build, logits_of, reference, y, _ = _budget_case(drops)
    said = []
    _, result = fit_accuracy_budget(
        units, build, logits_of, reference, accuracy_of(y), 1.0, interval=_interval(y), say=said.append
    )
    assert result.fp32_units == [] and result.confirmed is False and len(result.steps) == 3
    assert any("cannot be confirmed" in line for line in said)


def test_budget_that_cannot_be_met_is_an_error():
    drops = {frozenset(): 5.0, frozenset("C"): 5.0, frozenset("CA"): 5.0, frozenset("ABC"): 5.0}
    units, build, logits_of, reference, y, _ = _budget_case(drops)
    with pytest.raises(AccuracyBudgetError, match="every quantized layer back in fp32"):
        fit_accuracy_budget(units, build, logits_of, reference, accuracy_of(y), 1.0)


def test_max_drop_export_records_budget(tiny_checkpoint, data_dir, tmp_path):
    # A 100-point budget is met by all-INT8 on every CPU (how much the tiny model loses depends on the recipe the
    # host gets: 3.3 points with AVX2's 7-bit weights); the search itself is tested above on synthetic logits.
    config = ExportConfig(quantization=quantization_from_recipe("avx2"), max_drop_points=100.0)
    eval_data = load_file(data_dir / "dev.jsonl")
    report = export_artifact(tiny_checkpoint, tmp_path / "a", config, eval_data=eval_data, progress=False)
    budget = report.manifest.quantization.accuracy_budget
    assert budget.drop_points <= budget.max_drop_points == 100.0 and budget.fp32_units == []
    assert report.manifest.evaluation.drop_points == budget.drop_points
    assert [step.drop_points for step in budget.steps] == [budget.drop_points]  # met at once: one model built
    Classifier.load(tmp_path / "a")
    report.budget.latency_cost = {"shape": "1x128", "all_int8_p50_ms": 10.0, "final_p50_ms": 12.5, "ratio": 1.25}
    summary = format_export_summary(report)
    assert "accuracy budget" in summary and "1x128 p50 12.5 ms vs 10.0 ms all-INT8 (1.25x)" in summary


def test_zero_budget_is_met_or_refused_writing_nothing(tiny_checkpoint, data_dir, tmp_path):
    # Whether all-INT8 flips one of the 30 dev texts depends on the CPU's recipe; either way the answer is honest.
    config = ExportConfig(quantization=quantization_from_recipe("avx2"), max_drop_points=0.0)
    try:
        report = export_artifact(tiny_checkpoint, tmp_path / "a", config, eval_data=load_file(data_dir / "dev.jsonl"))
    except AccuracyBudgetError as exc:
        assert "every quantized layer back in fp32" in str(exc) and not (tmp_path / "a").exists()
    else:
        assert report.manifest.quantization.accuracy_budget.drop_points <= 0.0


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_openvino_artifact_runs_with_openvino_alone(tiny_checkpoint, tiny_artifact, data_dir, tmp_path, int8, capsys):
    quantization = quantization_from_recipe("openvino-int8") if int8 else None
    config = ExportConfig(backend="openvino", quantization=quantization)
    calibration = load_file(data_dir / "train.jsonl", label_column=None) if int8 else None
    report = export_artifact(
        tiny_checkpoint,
        tmp_path / "ov",
        config,
        eval_data=load_file(data_dir / "dev.jsonl"),
        calibration_data=calibration,
        progress=False,
    )
    assert capsys.readouterr().out == ""  # NNCF's progress bars never reach stdout, where summaries go
    manifest = report.manifest
    assert manifest.backend == "openvino" and manifest.model_files == ["model.xml", "model.bin"]
    assert set(manifest.files) == {
        "model.xml",
        "model.bin",
        "tokenizer.json",
        "conformance.jsonl",
        "README.md",
        "config.json",
        "tokenizer_config.json",
    }
    clf = Classifier.load(tmp_path / "ov", openvino_mode="throughput")
    texts = ["the team won the match", "shares fell on the market", "new phone chip"]
    ov, ort = clf.predict_proba(texts), Classifier.load(tiny_artifact).predict_proba(texts)
    # The tiny model's probabilities are near-uniform (top two can tie to 3 decimals), so INT8 is held
    # to a probability tolerance, and labels must agree only where fp32's margin exceeds that tolerance.
    atol = 0.03 if int8 else 1e-4
    np.testing.assert_allclose(ov, ort, atol=atol)
    top2 = np.sort(ort, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * atol
    assert (ov.argmax(1) == ort.argmax(1))[clear].all()
    assert manifest.evaluation.drift.agreement >= 0.9
    # and `edgebert bench` measures it next to the ONNX Runtime artifact
    argv = ["bench", str(tmp_path / "ov"), "--reference", str(tiny_artifact), "--data", str(data_dir / "dev.jsonl")]
    argv += ["--shapes", "1x8", "--rounds", "1", "--seconds", "0.05", "--no-cold-start", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "bench")]) == 0
    report = json.loads((tmp_path / "bench" / "report.json").read_text())
    assert report["variants"]["ov"]["kind"].startswith("openvino")


def test_openvino_int8_without_calibration_names_the_fix(tiny_checkpoint, tmp_path):
    config = ExportConfig(backend="openvino", quantization=quantization_from_recipe("avx2"))
    assert config.quantization.mode == "static"  # NNCF always calibrates
    with pytest.raises(InputError, match="--calib FILE"):
        export_artifact(tiny_checkpoint, tmp_path / "a", config, progress=False)


# ---------------------------------------------------------------- CLI user errors
def test_static_without_calib(tiny_checkpoint, tmp_path, capsys):
    err = cli_error(["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--int8", "--static"], capsys)
    assert "--calib FILE" in err


def test_empty_calibration_file(tiny_checkpoint, tmp_path, capsys):
    empty = tmp_path / "calib.txt"
    empty.write_text("\n\n")
    argv = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--int8", "--static", "--calib", str(empty)]
    assert "is empty" in cli_error(argv, capsys)


def test_unreadable_calibration_file(tiny_checkpoint, tmp_path, capsys):
    binary = tmp_path / "calib.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    argv = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--int8", "--static", "--calib", str(binary)]
    assert "not UTF-8" in cli_error(argv, capsys)


def test_missing_calibration_file(tiny_checkpoint, tmp_path, capsys):
    argv = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--static", "--calib", "nope.jsonl"]
    assert "not found" in cli_error(argv, capsys)


def test_calib_without_static(tiny_checkpoint, data_dir, tmp_path, capsys):
    argv = [
        "export",
        str(tiny_checkpoint),
        "--out",
        str(tmp_path / "a"),
        "--int8",
        "--calib",
        str(data_dir / "train.jsonl"),
    ]
    assert "add --static" in cli_error(argv, capsys)


def test_max_drop_needs_eval(tiny_checkpoint, tmp_path, capsys):
    argv = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--int8", "--max-drop", "0.3"]
    assert "add --eval" in cli_error(argv, capsys)


def test_max_drop_needs_int8(tiny_checkpoint, tmp_path, capsys):
    argv = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--max-drop", "0.3"]
    assert "add --int8" in cli_error(argv, capsys)


def test_bad_calib_size(tiny_checkpoint, tmp_path, capsys):
    argv = ["export", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--int8", "--static", "--calib-size", "0"]
    assert "calibration-size must be positive" in cli_error(argv, capsys)


def test_export_evaluation_carries_intervals(tiny_int8_artifact, tiny_artifact):
    """Accuracy and drop come with 95% bootstrap intervals in the manifest and the summary (issue 24)."""
    from edgebert.core.artifact import read_manifest

    int8, fp32 = read_manifest(tiny_int8_artifact).evaluation, read_manifest(tiny_artifact).evaluation
    low, high = int8.score_ci95
    assert 0 <= low <= int8.score <= high <= 1
    assert int8.drop_ci95[0] <= int8.drop_points <= int8.drop_ci95[1]
    assert fp32.drop_ci95 is None and fp32.score_ci95[0] <= fp32.score <= fp32.score_ci95[1]


def test_test_split_is_reported_beside_the_eval_set_and_never_chosen_on(tiny_checkpoint, data_dir, tmp_path, capsys):
    from .conftest import make_examples, write_jsonl

    write_jsonl(tmp_path / "test.jsonl", make_examples(40, seed=3))
    out = tmp_path / "a"
    args = ["export", str(tiny_checkpoint), "--out", str(out), "--int8", "--eval", str(data_dir / "dev.jsonl")]
    assert main([*args, "--test", str(tmp_path / "test.jsonl"), "--max-drop", "99", "--quiet"]) == 0
    manifest = read_manifest(out)
    evaluation, test = manifest.evaluation, manifest.test_evaluation
    assert (evaluation.n, test.n) == (30, 40) and test.data.endswith("test.jsonl")
    assert test.drop_ci95[0] <= test.drop_points <= test.drop_ci95[1]
    assert test.score_ci95[0] <= test.score <= test.score_ci95[1]
    budget = manifest.quantization.accuracy_budget
    assert budget.confirmed is not None and budget.drop_ci95 is not None
    same = ["--test", str(data_dir / "dev.jsonl"), "--force"]
    assert "the test set must be one nothing was selected on" in cli_error([*args, *same], capsys)


def test_openvino_bf16_is_opt_in_checked_by_the_golden_replay_and_refused_without_native_bf16(
    tiny_checkpoint, data_dir, tmp_path, monkeypatch
):
    from edgebert.core import cpu
    from edgebert.runtime import model as runtime_model

    artifact = tmp_path / "ov"
    config = ExportConfig(backend="openvino", quantization=quantization_from_recipe("openvino-int8"))
    calibration = load_file(data_dir / "train.jsonl", label_column=None)
    export_artifact(tiny_checkpoint, artifact, config, calibration_data=calibration, progress=False)
    texts = ["the team won the match", "shares fell on the market", "new phone chip"]
    f32 = Classifier.load(artifact)
    with pytest.raises(InputError, match="openvino_precision must be one of"):
        Classifier.load(artifact, openvino_precision="fp16")
    native = cpu.cpu_info().native_bf16
    no_bf16 = cpu.CpuInfo("x", "x86_64", frozenset({"avx2"}))
    monkeypatch.setattr(runtime_model, "cpu_info", lambda: no_bf16)
    with pytest.raises(InputError, match="needs a CPU with native bf16"):
        Classifier.load(artifact, openvino_precision="bf16")
    monkeypatch.undo()
    if not native:
        pytest.skip("this CPU has no native bf16: the bf16 run itself cannot be checked here")
    bf16 = Classifier.load(artifact, openvino_precision="bf16")  # passed the golden replay
    assert np.abs(bf16.predict_logits(texts) - f32.predict_logits(texts)).max() < 0.1


def test_a_bf16_openvino_export_records_its_precision_and_runs_in_f32_where_bf16_is_not_native(
    tiny_checkpoint, data_dir, tmp_path, monkeypatch
):
    from edgebert.core import cpu
    from edgebert.export import pipeline, save
    from edgebert.runtime import model as runtime_model

    no_bf16 = cpu.CpuInfo("x", "x86_64", frozenset({"avx2"}))
    calibration = load_file(data_dir / "train.jsonl", label_column=None)
    quantization = quantization_from_recipe("openvino-int8")
    with pytest.raises(InputError, match="applies to OpenVINO artifacts"):
        ExportConfig(quantization=quantization_for_cpu("avx2"), openvino_precision="bf16")
    bf16_config = ExportConfig(backend="openvino", quantization=quantization, openvino_precision="bf16")
    with monkeypatch.context() as patch:  # the export measures bf16 on its own CPU: refused where it is emulated
        patch.setattr(pipeline, "cpu_info", lambda: no_bf16)
        with pytest.raises(InputError, match="no native bf16"):
            export_artifact(tiny_checkpoint, tmp_path / "x", bf16_config, calibration_data=calibration, progress=False)
    artifact = tmp_path / "ov"
    if cpu.cpu_info().native_bf16:  # the real thing: evaluated and recorded in bf16, replayed so at load
        export_artifact(tiny_checkpoint, artifact, bf16_config, calibration_data=calibration, progress=False)
        assert read_manifest(artifact).openvino_precision == "bf16"
        assert read_manifest(artifact).golden.atol == save.GOLDEN_ATOL["bf16"]
        Classifier.load(artifact)
    else:  # an f32 export relabelled as a bf16 one stands in for it (the manifest is not in its own checksums)
        config = ExportConfig(backend="openvino", quantization=quantization)
        export_artifact(tiny_checkpoint, artifact, config, calibration_data=calibration, progress=False)
        manifest = json.loads((artifact / "edgebert.json").read_text())
        (artifact / "edgebert.json").write_text(json.dumps({**manifest, "openvino_precision": "bf16"}))
    monkeypatch.setattr(runtime_model, "cpu_info", lambda: no_bf16)
    with pytest.warns(UserWarning, match="no native bf16, so they run in f32"):
        model = Classifier.load(artifact)  # the golden replay passed in f32
    assert model.predict("the team won the match").label
    onnx_manifest = json.loads((artifact / "edgebert.json").read_text())
    onnx_manifest["backend"] = "onnxruntime"
    with pytest.raises(ArtifactError, match="openvino_precision"):
        Manifest.from_dict(onnx_manifest, "edgebert.json")


def test_changed_share_bound_is_a_wilson_upper_end_in_points():
    from edgebert.core.metrics import changed_share_bound

    low, high = changed_share_bound(0, 12000)
    assert low == -high and 0.02 < high < 0.04  # no change in 12,000 texts: within about 0.03 points
    assert changed_share_bound(6, 100)[1] == pytest.approx(12.5, abs=0.1)  # 6% of 100: Wilson's upper end 12.5%
    assert changed_share_bound(100, 100)[1] == pytest.approx(100.0)


def test_agreement_evidence_confirms_what_a_small_eval_set_cannot():
    # one text of 100 wrong: the eval bootstrap reaches past 1.0, but a pool where few labels change confirms it
    drops = {frozenset(): 1.0, frozenset({"C"}): 1.0, frozenset({"C", "A"}): 0.0}
    units, build, logits_of, reference, y, built = _budget_case(drops)
    pool_bound = [-0.4, 0.4]
    _, result = fit_accuracy_budget(
        units, build, logits_of, reference, accuracy_of(y), 1.0, interval=_interval(y),
        evidence=lambda path: pool_bound, evidence_name="pool",
    )  # fmt: skip
    assert result.fp32_units == [] and result.confirmed and result.drop_ci95 == pool_bound
    assert result.evidence == "pool" and built == [[]]


def test_export_agreement_pool_confirms_the_budget_and_is_recorded(tiny_checkpoint, data_dir, tmp_path, capsys):
    out = tmp_path / "a"
    args = ["export", str(tiny_checkpoint), "--out", str(out), "--int8", "--eval", str(data_dir / "dev.jsonl")]
    assert main([*args, "--max-drop", "100", "--agreement", str(data_dir / "train.jsonl")]) == 0
    budget = Classifier.load(out).manifest.quantization.accuracy_budget
    pool = len(load_file(data_dir / "train.jsonl"))
    assert f"train.jsonl ({pool} unlabelled texts)" in budget.evidence and budget.confirmed
    assert 0 < budget.drop_ci95[1] <= 100 and budget.drop_ci95[0] == -budget.drop_ci95[1]
    assert "budget evidence" in capsys.readouterr().out


def test_agreement_needs_a_budget_and_a_task_it_bounds(
    tiny_checkpoint, tiny_token_checkpoint, data_dir, token_data_dir, tmp_path, capsys
):
    pool = str(data_dir / "train.jsonl")
    base = [
        "export",
        str(tiny_checkpoint),
        "--out",
        str(tmp_path / "a"),
        "--int8",
        "--eval",
        str(data_dir / "dev.jsonl"),
    ]
    assert "add --max-drop" in cli_error([*base, "--agreement", pool], capsys)
    token = ["export", str(tiny_token_checkpoint), "--out", str(tmp_path / "t"), "--int8", "--max-drop", "1"]
    token_pool = str(token_data_dir / "train.jsonl")
    assert "single-label sequence classifiers" in cli_error([*token, "--agreement", token_pool], capsys)
