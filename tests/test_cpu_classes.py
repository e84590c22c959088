"""Every choice edgebert makes by CPU, made under each CPU class it supports (real /proc/cpuinfo of each, through
EDGEBERT_CPUINFO): the same verdicts on whichever machine runs the suite."""

from __future__ import annotations

import pytest

from edgebert import Classifier
from edgebert.core.artifact import read_manifest
from edgebert.core.cpu import cpu_info
from edgebert.core.errors import ArtifactError, InputError
from edgebert.core.fleet import unsafe_reason
from edgebert.data.text import TextDataset
from edgebert.export.config import TuneConfig
from edgebert.export.recipes import quantization_for_cpu
from edgebert.export.tune import candidate_plans, refuse_unfaithful_scoring
from edgebert.runtime.model import _check_options
from edgebert.train.config import TrainConfig
from edgebert.train.optimizer import use_bf16

from .conftest import SIMULATED_CPUS

# class -> (isa, microarchitecture by flags, recipe behind --int8, saturates u8s8, native bf16)
EXPECTED = {
    "avx2": ("avx2", "zen3", "avx2", True, False),
    "avx512-vnni": ("avx512-vnni", "zen4", "avx512-vnni", False, True),
    "amx": ("avx512-vnni", "sapphirerapids", "avx512-vnni", False, True),
    "arm64": ("arm64", "", "arm64", False, False),  # bf16 here means x86 avx512_bf16 or AMX (OpenVINO, torch)
}


def test_every_class_has_a_real_cpuinfo_and_an_expectation():
    assert set(EXPECTED) == set(SIMULATED_CPUS)


@pytest.mark.parametrize("cpu_class", list(SIMULATED_CPUS))
def test_cpu_is_read_as_its_class(cpu_class, simulate_cpu):
    simulate_cpu(cpu_class)
    info = cpu_info()
    isa, name, recipe, saturates, bf16 = EXPECTED[cpu_class]
    assert (info.isa, info.microarchitecture, info.saturates_u8s8, info.native_bf16) == (isa, name, saturates, bf16)
    assert not info.is_host and "EDGEBERT_CPUINFO" in info.source and info.record()["isa"] == isa
    assert quantization_for_cpu().recipe == recipe  # what `export --int8` builds here


@pytest.mark.parametrize("cpu_class", list(SIMULATED_CPUS))
def test_full_range_int8_is_refused_only_where_it_saturates(cpu_class, simulate_cpu, vnni_artifact):
    simulate_cpu(cpu_class)
    saturates = EXPECTED[cpu_class][3]
    reason = unsafe_reason(read_manifest(vnni_artifact), cpu_info(), {"onnxruntime"})
    assert (reason is not None) == saturates
    if saturates:
        with pytest.raises(ArtifactError, match="has no VNNI"):
            Classifier.load(vnni_artifact)
        # the opt-out is explicit; the refusal is about the CPU, not the file
        assert Classifier.load(vnni_artifact, allow_saturation=True).labels
    else:
        assert Classifier.load(vnni_artifact).labels


@pytest.mark.parametrize("cpu_class", list(SIMULATED_CPUS))
def test_bf16_is_chosen_only_where_it_is_native(cpu_class, simulate_cpu):
    simulate_cpu(cpu_class)
    native = EXPECTED[cpu_class][4]
    assert use_bf16(TrainConfig(precision="auto")) is native  # train --precision auto
    if native:
        _check_options(None, 8, "latency", "bf16")
    else:
        with pytest.raises(InputError, match="needs a CPU with native bf16"):
            _check_options(None, 8, "latency", "bf16")


@pytest.mark.parametrize("cpu_class", list(SIMULATED_CPUS))
@pytest.mark.parametrize("target", ["avx2", "avx512-vnni", "arm64"])
def test_tune_for_a_target_is_planned_from_the_table_and_refused_where_scoring_would_saturate(
    cpu_class, target, simulate_cpu, tiny_checkpoint
):
    simulate_cpu(cpu_class)
    config = TuneConfig(target=target, engines=("dynamic",), light_last_layer=False)
    plans = candidate_plans({"teacher": tiny_checkpoint}, config, target, None, timed=False)
    assert [p.config.quantization.recipe for p in plans] == [quantization_for_cpu(target).recipe]
    saturates_here, full_range_target = EXPECTED[cpu_class][3], target != "avx2"
    if saturates_here and full_range_target:
        with pytest.raises(InputError, match="saturate"):
            refuse_unfaithful_scoring(plans, cpu_info(), target)
    else:
        refuse_unfaithful_scoring(plans, cpu_info(), target)


@pytest.mark.parametrize("cpu_class", list(SIMULATED_CPUS))
def test_tune_builds_bf16_candidates_only_where_bf16_is_native_and_timed(cpu_class, simulate_cpu, tiny_checkpoint):
    simulate_cpu(cpu_class)
    calibration = TextDataset(["a text"], None, "calib")
    config = TuneConfig(light_last_layer=False)
    names = [
        p.name for p in candidate_plans({"teacher": tiny_checkpoint}, config, cpu_info().isa, calibration, timed=True)
    ]
    assert ("teacher/openvino-bf16" in names) is EXPECTED[cpu_class][4]
    assert {"teacher/dynamic", "teacher/static", "teacher/openvino"} <= set(names)
    for plan in candidate_plans({"teacher": tiny_checkpoint}, config, cpu_info().isa, calibration, timed=True):
        assert (plan.config.openvino_precision == "bf16") is plan.name.endswith("openvino-bf16")
    target = candidate_plans({"teacher": tiny_checkpoint}, TuneConfig(target="avx2"), "avx2", calibration, timed=False)
    assert all(p.config.openvino_precision == "f32" for p in target)  # another CPU's artifact: never bf16
