"""Fleet bundles: several variants of one model, the runtime choosing per CPU."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgebert import Classifier
from edgebert.cli import main
from edgebert.core.cpu import CpuInfo
from edgebert.core.errors import ArtifactError, InputError
from edgebert.core.fleet import FLEET, choose_variant, read_fleet
from edgebert.export.fleet import build_fleet
from edgebert.runtime.fleet import installed_backends

from .conftest import cli_error

AVX2 = CpuInfo("fake Zen 3", "x86_64", frozenset({"avx2"}))
VNNI = CpuInfo("fake Zen 4", "x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}))
ARM = CpuInfo("fake Graviton", "aarch64", frozenset({"asimddp"}))
TEXTS = ["the team won the match", "shares fell on the market", "new phone chip"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, tiny_int8_artifact, vnni_artifact, tiny_artifact):
    variants = tmp_path_factory.mktemp("variants")
    for name, source in (("ort-avx2", tiny_int8_artifact), ("ort-fp32", tiny_artifact)):
        shutil.copytree(source, variants / name)
    out = tmp_path_factory.mktemp("fleet") / "bundle"
    build_fleet([variants / "ort-avx2", vnni_artifact, variants / "ort-fp32"], out)
    return out


def test_variant_is_chosen_by_the_cpus_instruction_set(fleet):
    engines = {"onnxruntime"}
    assert choose_variant(fleet, AVX2, engines).name == "ort-avx2"
    vnni = choose_variant(fleet, VNNI, engines)
    assert vnni.name == "ort-vnni" and vnni.skipped == {}
    assert choose_variant(fleet, ARM, engines).name == "ort-vnni"  # arm64 kernels have no u8s8 saturation


def test_unsafe_variant_is_skipped_with_its_reason_and_refused_when_named(fleet):
    fleet_index = read_fleet(fleet)
    assert fleet_index.preference["avx2"][-1] == "ort-vnni"  # ranked last where it saturates
    with pytest.raises(ArtifactError, match="saturates on avx2 without VNNI"):
        choose_variant(fleet, AVX2, {"onnxruntime"}, name="ort-vnni")
    with pytest.raises(ArtifactError, match="no variant 'nope'"):
        choose_variant(fleet, AVX2, {"onnxruntime"}, name="nope")


def test_bundle_with_no_safe_variant_is_refused_naming_each_reason(tmp_path, vnni_artifact, tiny_artifact):
    ov_like = tmp_path / "fp32"
    shutil.copytree(tiny_artifact, ov_like)
    out = tmp_path / "b"
    build_fleet([vnni_artifact, ov_like], out)
    # an engine that is not installed counts as unsafe: here, pretend ONNX Runtime is missing
    with pytest.raises(ArtifactError, match="No variant .* can run on this CPU .*engine \\(onnxruntime\\) is not"):
        choose_variant(out, AVX2, set())


def test_classifier_loads_the_variant_this_cpu_gets_and_checks_its_golden_sample(fleet):
    from edgebert.core.cpu import cpu_info

    expected = choose_variant(fleet, cpu_info(), installed_backends()).name
    clf = Classifier.load(fleet)
    assert clf.variant == expected
    direct = Classifier.load(fleet / expected).predict_proba(TEXTS)
    np.testing.assert_array_equal(clf.predict_proba(TEXTS), direct)
    assert Classifier.load(fleet, variant="ort-fp32").variant == "ort-fp32"
    assert Classifier.load(fleet, probe=True).variant in read_fleet(fleet).variants


def test_fake_vnni_cpu_loads_the_full_range_variant(fleet, monkeypatch):
    monkeypatch.setattr("edgebert.runtime.fleet.cpu_info", lambda: VNNI)
    monkeypatch.setattr("edgebert.runtime.model.cpu_info", lambda: VNNI)
    assert Classifier.load(fleet).variant == "ort-vnni"


def test_unsafe_first_choice_is_skipped_with_a_warning(tmp_path, fleet, monkeypatch):
    copy = tmp_path / "bundle"
    shutil.copytree(fleet, copy)
    index = json.loads((copy / FLEET).read_text())
    index["preference"]["avx2"] = ["ort-vnni", "ort-fp32", "ort-avx2"]  # a hand-edited order
    (copy / FLEET).write_text(json.dumps(index))
    monkeypatch.setattr("edgebert.runtime.fleet.cpu_info", lambda: AVX2)
    with pytest.warns(UserWarning, match="using variant ort-fp32; skipped ort-vnni: full-range u8xs8 INT8 saturates"):
        assert Classifier.load(copy).variant == "ort-fp32"


def test_swapped_variant_is_refused(tmp_path, fleet, tiny_artifact):
    copy = tmp_path / "bundle"
    shutil.copytree(fleet, copy)
    shutil.rmtree(copy / "ort-avx2")
    shutil.copytree(tiny_artifact, copy / "ort-avx2")  # a valid artifact, but not the one the index pinned
    with pytest.raises(ArtifactError, match="not the one fleet.json pinned"):
        Classifier.load(copy, variant="ort-avx2")


def test_bundle_refuses_variants_of_different_models(tmp_path, tiny_artifact, token_int8_artifact):
    with pytest.raises(InputError, match="differ in task"):
        build_fleet([tiny_artifact, token_int8_artifact], tmp_path / "b")
    with pytest.raises(InputError, match="at least 2 variants"):
        build_fleet([tiny_artifact], tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_bundle_cli_writes_a_bundle_that_verify_and_predict_accept(tmp_path, fleet, capsys):
    variants = [str(fleet / name) for name in ("ort-avx2", "ort-fp32")]
    assert main(["bundle", *variants, "--out", str(tmp_path / "b")]) == 0
    assert "avx2" in capsys.readouterr().out
    assert json.loads((tmp_path / "b" / FLEET).read_text())["preference"]["avx2"][0] == "ort-avx2"
    assert main(["verify", str(tmp_path / "b"), "--json"]) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["variant"] for r in reports] == ["ort-avx2", "ort-fp32"] and all(r["ok"] for r in reports)
    assert main(["predict", str(tmp_path / "b"), "the team won the match"]) == 0
    err = cli_error(["bundle", *variants, "--out", str(tmp_path / "b")], capsys)
    assert "--force" in err


def test_full_range_export_made_without_vnni_says_its_scores_include_saturation(vnni_artifact):
    from edgebert.core.artifact import read_manifest
    from edgebert.export.pipeline import ExportReport
    from edgebert.export.summary import format_export_summary

    manifest = read_manifest(vnni_artifact)
    report = ExportReport(vnni_artifact, manifest, {"max_abs_logit_diff": 0.0, "n": 1}, 0)
    manifest.quantization.export_cpu = "avx2"
    assert "include u8xs8 saturation" in format_export_summary(report)
    manifest.quantization.export_cpu = "avx512-vnni"
    assert "saturation" not in format_export_summary(report)


def test_verify_checks_the_bytes_of_a_variant_it_cannot_run(tmp_path, fleet, monkeypatch, capsys):
    """A variant this CPU must not run (full-range INT8 on AVX2) is not run, but a corrupt one still fails."""
    bundle = tmp_path / "bundle"
    shutil.copytree(fleet, bundle)
    monkeypatch.setattr("edgebert.core.cpu.cpu_info", lambda: AVX2)
    assert main(["verify", str(bundle), "--json"]) == 0
    reports = {r["variant"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert "not run here" in reports["ort-vnni"]["skipped"] and "checksums ok" in reports["ort-vnni"]["skipped"]
    with (bundle / "ort-vnni" / "model.onnx").open("r+b") as f:  # one flipped byte in the unrunnable variant
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert main(["verify", str(bundle)]) == 2
    assert "does not match its checksum" in capsys.readouterr().err
