"""Artifacts -> one fleet bundle (core/fleet.py): load and verify each, check they are the same model, copy them
side by side, and write the index with the preference order per CPU family.

The default order is the rule measured on this project's machines (benchmarks/results/peers-*.json): on x86
without VNNI, ONNX Runtime INT8 with 7-bit weights beats OpenVINO INT8 (about 2x on Zen 3); with VNNI, OpenVINO
INT8 is fastest (0.63x Optimum's latency on Zen 4) and a full-range ORT INT8 variant comes next; on arm64, ORT.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from ..core.artifact import MANIFEST, TOKENIZER, Manifest, read_manifest, verify_files
from ..core.cpu import ARM64, AVX2, AVX512_VNNI, ISAS, VNNI_ISAS
from ..core.errors import InputError
from ..core.files import atomic_directory, check_writable, sha256_file, write_text_atomic
from ..core.fleet import FLEET, Fleet, is_fleet

NOTES = {
    AVX2: "ORT INT8 (7-bit weights) ~2x OpenVINO INT8 at 1x128 on Zen 3; full-range u8xs8 saturates here",
    AVX512_VNNI: "OpenVINO INT8 fastest on Zen 4 (VNNI): 0.63x Optimum ORT INT8's 1x128 latency",
    ARM64: "ONNX Runtime's arm64 kernels (sdot/i8mm); OpenVINO's ARM INT8 path is not measured here",
}


# Kinds of variant, best first, per CPU family. Unsafe kinds are ranked too (the runtime skips them with a reason).
RANKING = {
    "vnni": ["ov-int8", "ort-int8-full", "ort-int8-7bit", "ov-fp32", "fp32"],
    ARM64: ["ort-int8-full", "ort-int8-7bit", "ov-int8", "fp32", "ov-fp32"],
    "x86": ["ort-int8-7bit", "ov-int8", "fp32", "ov-fp32", "ort-int8-full"],
}


def variant_kind(backend: str, quantization) -> str:
    """The ranking's name for an artifact built with `backend` and `quantization` (a record, a config, or None)."""
    if backend == "openvino":
        return "ov-int8" if quantization else "ov-fp32"
    if quantization is None:
        return "fp32"
    return "ort-int8-7bit" if quantization.reduce_range else "ort-int8-full"


def variant_rank(kind: str, isa: str) -> int:
    """Lower runs first on `isa`."""
    family = "vnni" if isa in VNNI_ISAS else ARM64 if isa == ARM64 else "x86"
    return RANKING[family].index(kind)


def default_preference(manifests: dict[str, Manifest]) -> dict[str, list[str]]:
    names = list(manifests)  # ties keep the order the user gave
    kinds = {n: variant_kind(m.backend, m.quantization) for n, m in manifests.items()}
    return {isa: sorted(names, key=lambda n: (variant_rank(kinds[n], isa), names.index(n))) for isa in ISAS}


def build_fleet(artifacts: list[Path], out: Path, *, force: bool = False) -> Fleet:
    artifacts = [Path(p) for p in artifacts]
    check_writable(out, force, inputs=tuple(artifacts))
    if len(artifacts) < 2:
        raise InputError("A fleet bundle holds at least 2 variants; pass two or more artifact directories.")
    names = [p.resolve().name for p in artifacts]
    if len(set(names)) != len(names):
        raise InputError(f"Variant names come from the directory names and must differ; got {names}.")
    manifests: dict[str, Manifest] = {}
    for name, path in zip(names, artifacts, strict=True):
        if is_fleet(path):
            raise InputError(f"{path} is already a fleet bundle; pass its variant directories instead.")
        manifests[name] = read_manifest(path)
        verify_files(path, manifests[name])  # refuse a corrupt variant now, not on a user's machine
    _check_same_model(manifests)
    with atomic_directory(out, force) as staging:
        for name, path in zip(names, artifacts, strict=True):
            (staging / name).mkdir()
            for file in [*manifests[name].files, MANIFEST]:  # only what the manifest vouches for
                shutil.copyfile(path / file, staging / name / file)
        fleet = Fleet(
            task=manifests[names[0]].task,
            variants={n: sha256_file(staging / n / MANIFEST) for n in names},
            preference=default_preference(manifests),
            notes=NOTES,
        )
        write_text_atomic(staging / FLEET, json.dumps(dataclasses.asdict(fleet), indent=2) + "\n")
    return fleet


def _check_same_model(manifests: dict[str, Manifest]) -> None:
    """Every variant must answer the same question the same way: task, labels, max_length and tokenizer."""
    first_name, first = next(iter(manifests.items()))
    for name, m in manifests.items():
        for field in ("task", "labels", "max_length"):
            if getattr(m, field) != getattr(first, field):
                raise InputError(
                    f"Variants {first_name} and {name} differ in {field} ({getattr(first, field)!r} vs "
                    f"{getattr(m, field)!r}); a bundle holds variants of one model. Export both from one checkpoint."
                )
        if m.files[TOKENIZER] != first.files[TOKENIZER]:
            raise InputError(
                f"Variants {first_name} and {name} have different tokenizers; export both from the same checkpoint."
            )
