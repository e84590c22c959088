"""Configs, recipes and CPU detection."""

from __future__ import annotations

import pytest

from edgebert.core.cpu import CpuInfo, usable_cpu_count
from edgebert.core.errors import InputError
from edgebert.export.config import ExportConfig, QuantizationConfig
from edgebert.export.recipes import quantization_for_cpu, quantization_from_recipe, recipe_names
from edgebert.train.config import TrainConfig


@pytest.mark.parametrize(
    "flags, arch, isa",
    [
        ({"avx2", "avx512f", "avx512_vnni"}, "x86_64", "avx512-vnni"),
        ({"avx2", "avx_vnni"}, "x86_64", "avx-vnni"),
        ({"avx2", "avx512f"}, "x86_64", "avx512"),
        ({"avx2", "fma"}, "x86_64", "avx2"),
        ({"sse4_2"}, "x86_64", "generic"),
        ({"asimddp"}, "aarch64", "arm64"),
    ],
)
def test_isa_from_cpu_flags(flags, arch, isa):
    assert CpuInfo("cpu", arch, frozenset(flags)).isa == isa


@pytest.mark.parametrize(
    "isa, recipe, reduce_range",
    [
        ("avx512-vnni", "avx512-vnni", False),
        ("avx2", "avx2", True),
        ("avx512", "avx2", True),
        ("arm64", "arm64", False),
    ],
)
def test_int8_preset_follows_target_cpu(isa, recipe, reduce_range):
    config = quantization_for_cpu(isa)
    assert config.recipe == recipe and config.reduce_range is reduce_range and config.mode == "dynamic"


def test_every_shipped_recipe_loads():
    assert {"avx2", "avx512-vnni", "arm64"} <= set(recipe_names())
    for name in recipe_names():
        quantization_from_recipe(name)


def test_recipe_from_path_and_bad_keys(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text('[quantization]\nweight_type = "quint8"\nper_channel = false\n')
    assert quantization_from_recipe(str(good)).weight_type == "quint8"
    bad = tmp_path / "bad.toml"
    bad.write_text("[quantization]\nweight_typo = 1\n")
    with pytest.raises(InputError, match="unknown keys"):
        quantization_from_recipe(str(bad))
    with pytest.raises(InputError, match="Unknown recipe"):
        quantization_from_recipe("nope")
    with pytest.raises(InputError, match="Unknown --target"):
        quantization_for_cpu("z80")


@pytest.mark.parametrize("kwargs", [{"max_length": 2}, {"epochs": 0}, {"learning_rate": 5}, {"warmup_ratio": 1.0}])
def test_train_config_validation(kwargs):
    with pytest.raises(InputError):
        TrainConfig(**kwargs)


def test_quantization_and_export_config_validation():
    with pytest.raises(InputError, match="weight-type"):
        QuantizationConfig(weight_type="int4")
    with pytest.raises(InputError, match="opset"):
        ExportConfig(opset=9)


def test_usable_cpu_count_respects_affinity():
    import os

    assert 1 <= usable_cpu_count() <= len(os.sched_getaffinity(0))
