"""CPU detection on each platform, from fixtures in each platform's own format (tests/fixtures/cpu/).

linux-zen3.txt was captured on this project's CI machine and linux-kvm-xeon-amx.txt on a later session's VM; the others are transcribed in the format each
platform prints (/proc/cpuinfo on arm64, macOS sysctl, numpy's CPUID table on Windows), not captured there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebert.core.cpu import (
    CpuInfo,
    cgroup_cpu_quota,
    flags_from_numpy,
    normalize_arch,
    parse_proc_cpuinfo,
    parse_sysctl,
)
from edgebert.export.recipes import ISA_TO_RECIPE

FIXTURES = Path(__file__).parent / "fixtures" / "cpu"


@pytest.mark.parametrize(
    "fixture, arch, isa, bf16",
    [
        ("linux-zen3.txt", "x86_64", "avx2", False),
        ("linux-zen4-excerpt.txt", "x86_64", "avx512-vnni", True),
        ("linux-arm64-graviton3.txt", "aarch64", "arm64", False),
    ],
)
def test_linux_proc_cpuinfo(fixture, arch, isa, bf16):
    model, flags = parse_proc_cpuinfo((FIXTURES / fixture).read_text())
    info = CpuInfo(model, normalize_arch(arch), frozenset(flags))
    assert info.isa == isa and info.native_bf16 is bf16
    if arch == "x86_64":
        assert model.startswith("AMD EPYC")
    else:
        assert {"asimddp", "i8mm", "bf16"} <= set(info.notable_flags)


@pytest.mark.parametrize(
    "fixture, arch, isa, model",
    [("macos-x86-icelake.txt", "x86_64", "avx512-vnni", "Intel"), ("macos-arm64-m2.txt", "arm64", "arm64", "Apple M2")],
)
def test_macos_sysctl(fixture, arch, isa, model):
    name, flags = parse_sysctl((FIXTURES / fixture).read_text())
    info = CpuInfo(name, arch, frozenset(flags))
    assert info.isa == isa and model in name
    if arch == "arm64":
        assert flags == {"asimddp", "i8mm", "bf16"}
    else:
        assert {"avx2", "avx512f", "avx512_vnni"} <= flags


@pytest.mark.parametrize(
    "fixture, arch, isa, bf16",
    [
        ("windows-x86-numpy-zen3.json", "AMD64", "avx2", False),
        ("windows-x86-numpy-sapphirerapids.json", "AMD64", "avx512-vnni", True),
        ("windows-arm64-numpy-snapdragon.json", "ARM64", "arm64", False),
    ],
)
def test_windows_cpuid_through_numpy(fixture, arch, isa, bf16):
    flags = flags_from_numpy(json.loads((FIXTURES / fixture).read_text()))
    info = CpuInfo("cpu", normalize_arch(arch), frozenset(flags))
    assert info.isa == isa and info.native_bf16 is bf16


def test_every_isa_has_a_recipe():
    for isa in ("avx512-vnni", "avx-vnni", "avx512", "avx2", "arm64", "generic"):
        assert isa in ISA_TO_RECIPE


def test_cgroup_quota_v2_v1_and_none(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_quota(v1) == 2.0
    assert cgroup_cpu_quota(tmp_path / "absent") is None  # macOS, Windows: no cgroups


def test_usable_cpu_count_without_affinity_or_cgroups_falls_back_to_the_os(monkeypatch):
    """macOS and Windows have no sched_getaffinity and no /sys/fs/cgroup."""
    import os

    from edgebert.core import cpu

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    if hasattr(os, "process_cpu_count"):
        monkeypatch.setattr(os, "process_cpu_count", lambda: 6)
    monkeypatch.setattr(cpu, "cgroup_cpu_quota", lambda root: None)
    assert cpu.usable_cpu_count() == 6
    monkeypatch.setattr(cpu, "cgroup_cpu_quota", lambda root: 2.5)  # a container limited to 2.5 cores
    assert cpu.usable_cpu_count() == 2


def test_cpu_info_on_windows_needs_neither_proc_nor_sysctl(monkeypatch):
    from edgebert.core import cpu

    monkeypatch.delenv("EDGEBERT_CPUINFO", raising=False)  # detection itself, even under `make test-as`
    monkeypatch.setattr(cpu.platform, "system", lambda: "Windows")
    monkeypatch.setattr(cpu.platform, "machine", lambda: "AMD64")
    monkeypatch.setattr(cpu, "_windows_cpu_name", lambda: "Fake CPU")
    monkeypatch.setattr(cpu, "_numpy_features", lambda: {"AVX2": True, "AVX512_VNNI": False})
    info = cpu.cpu_info()
    assert info.arch == "x86_64" and info.model == "Fake CPU" and "avx2" in info.flags


def test_full_range_int8_artifact_is_refused_on_a_cpu_without_vnni(tiny_checkpoint, data_dir, tmp_path, monkeypatch):
    from edgebert import Classifier
    from edgebert.core.cpu import CpuInfo
    from edgebert.core.errors import ArtifactError
    from edgebert.export.config import ExportConfig
    from edgebert.export.pipeline import export_artifact
    from edgebert.export.recipes import quantization_from_recipe
    from edgebert.runtime import model

    out = tmp_path / "vnni"
    export_artifact(
        tiny_checkpoint, out, ExportConfig(quantization=quantization_from_recipe("avx512-vnni")), progress=False
    )
    avx2 = CpuInfo("Fake Zen 3", "x86_64", frozenset({"avx2", "fma"}))
    vnni = CpuInfo("Fake Zen 4", "x86_64", frozenset({"avx2", "avx512f", "avx512_vnni"}))
    arm = CpuInfo("Fake M2", "arm64", frozenset({"asimddp"}))
    monkeypatch.setattr(model, "cpu_info", lambda: avx2)
    with pytest.raises(ArtifactError, match="no VNNI.*--target avx2"):
        Classifier.load(out)
    assert Classifier.load(out, allow_saturation=True).predict("goal").label
    for cpu in (vnni, arm):
        monkeypatch.setattr(model, "cpu_info", lambda cpu=cpu: cpu)
        Classifier.load(out)


def test_cpu_identity_names_family_model_and_stepping():
    from edgebert.core.cpu import parse_cpu_identity

    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC 9R14\n"
    text += "stepping\t: 1\nflags\t\t: avx2\n\nprocessor\t: 1\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
    assert parse_cpu_identity(text) == "AuthenticAMD family 25 model 17 stepping 1"
    assert parse_cpu_identity("CPU implementer\t: 0x41\nCPU part\t: 0xd0c\n") == "implementer 0x41 part 0xd0c"
    assert parse_cpu_identity("") == ""


@pytest.mark.parametrize(
    "fixture, vendor, expected",
    [
        ("linux-zen3.txt", "AuthenticAMD", "zen3"),
        ("linux-zen4-excerpt.txt", "AuthenticAMD", "zen4"),
        ("linux-kvm-xeon-amx.txt", "GenuineIntel", "sapphirerapids"),  # reports model 167 (Rocket Lake): VMs lie
        ("linux-arm64-graviton3.txt", "", ""),
    ],
)
def test_microarchitecture_is_named_by_features_not_by_the_model_number(fixture, vendor, expected):
    from edgebert.core.cpu import microarchitecture_from_flags, parse_cpu_identity

    text = (FIXTURES / fixture).read_text()
    _, flags = parse_proc_cpuinfo(text)
    arch = "aarch64" if "arm64" in fixture else "x86_64"
    assert parse_cpu_identity(text).split(" ")[0] == vendor or not vendor
    assert microarchitecture_from_flags(vendor, arch, flags) == expected


def test_microarchitecture_table_on_macos_and_on_the_flags_that_told_zen4_from_zen5():
    from edgebert.core.cpu import microarchitecture_from_flags

    _, flags = parse_sysctl((FIXTURES / "macos-x86-icelake.txt").read_text())
    assert microarchitecture_from_flags("GenuineIntel", "x86_64", flags) == "icelake"
    zen4 = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}
    assert microarchitecture_from_flags("AuthenticAMD", "x86_64", zen4) == "zen4"
    assert microarchitecture_from_flags("AuthenticAMD", "x86_64", zen4 | {"avx_vnni"}) == "zen5"  # the mislabelled run


def test_cpu_record_names_the_machine_and_its_state():
    from edgebert.core.cpu import cpu_info

    record = cpu_info().record()
    assert {"vendor", "identity", "microarchitecture", "microarchitecture_source", "flags", "threads"} <= set(record)
    assert isinstance(record["virtualized"], bool) and record["threads"] >= 1
