"""Where quantization is decided: the CPU -> recipe table, the recipe files, and how the export flags combine.

A recipe is a TOML file in the top-level `export/` folder (installed as `edgebert.recipes`), one per
instruction-set family, holding a [quantization] section (QuantizationConfig fields) and optionally a backend.
`--int8` takes the recipe for this machine's CPU (or `--target`), `--recipe` names one, `--static` and the
`--calib-*` flags override it. `export_config_from_flags` is that rule, shared by the CLI and the Python API.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.cpu import ARM64, AVX2, AVX512, AVX512_VNNI, AVX_VNNI, GENERIC, cpu_info
from ..core.errors import InputError
from ..core.validate import known_keys
from .config import ExportConfig, QuantizationConfig

ISA_TO_RECIPE = {  # CPU family -> recipe file in export/
    AVX512_VNNI: "avx512-vnni",
    AVX_VNNI: "avx512-vnni",  # same VNNI dot-product kernels, 256-bit wide
    AVX512: "avx2",  # AVX-512 without VNNI has the same U8S8 saturation problem as AVX2
    AVX2: "avx2",
    ARM64: "arm64",
    GENERIC: "avx2",
}


def recipe_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml") for p in resources.files("edgebert.recipes").iterdir() if p.name.endswith(".toml")
    )


def load_recipe(name_or_path: str) -> dict[str, Any]:
    """A recipe by name (`avx2`) from the bundled `export/` folder, or a path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        resource = resources.files("edgebert.recipes") / f"{name_or_path}.toml"
        if not resource.is_file():
            raise InputError(f"Unknown recipe '{name_or_path}'; choose one of {recipe_names()} or pass a .toml path.")
        text = resource.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"Recipe '{name_or_path}' is not valid TOML: {exc}.") from exc


def recipe_backend(name: str) -> str:
    return load_recipe(name).get("backend", "onnxruntime")


def quantization_from_recipe(name: str) -> QuantizationConfig:
    section = load_recipe(name).get("quantization")
    if section is None:
        raise InputError(f"Recipe '{name}' has no [quantization] section.")
    return QuantizationConfig(**known_keys(QuantizationConfig, section, f"recipe '{name}' [quantization]"), recipe=name)


def quantization_for_cpu(isa: str | None = None) -> QuantizationConfig:
    """The dynamic-INT8 preset behind `--int8`: the recipe for `isa` (default: this machine's CPU)."""
    isa = isa or cpu_info().isa
    if isa not in ISA_TO_RECIPE:
        raise InputError(f"Unknown --target '{isa}'; choose one of {sorted(ISA_TO_RECIPE)}.")
    return quantization_from_recipe(ISA_TO_RECIPE[isa])


def export_config_from_flags(
    *,
    int8: bool = False,
    recipe: str | None = None,
    target: str | None = None,
    static: bool = False,
    backend: str | None = None,
    calibration_size: int | None = None,
    calibration_method: str | None = None,
    max_drop: float | None = None,
    **export_options: Any,
) -> ExportConfig:
    """The ExportConfig the `edgebert export` flags describe (None = not given; defaults from the dataclasses)."""
    if recipe and target:
        raise InputError("--recipe and --target both choose the quantization recipe; pass one.")
    quantization = None
    if recipe:
        quantization = quantization_from_recipe(recipe)
    elif int8 or target or static:
        quantization = quantization_for_cpu(target)
    if quantization:
        quantization = quantization.with_options(
            mode="static" if static else None,
            calibration_size=calibration_size,
            calibration_method=calibration_method,
        )
    elif calibration_size is not None or calibration_method is not None:
        raise InputError("--calib-size/--calib-method apply to INT8 exports: add --int8 --static.")
    backend = backend or (recipe_backend(recipe) if recipe else None)
    options = {k: v for k, v in export_options.items() if v is not None}
    return ExportConfig(
        quantization=quantization, max_drop_points=max_drop, **({"backend": backend} if backend else {}), **options
    )
