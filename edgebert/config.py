"""Stage configs as validated dataclasses. Presets map one-to-one to CLI flags. Torch-free.

`--int8` resolves to `QuantizationConfig.for_cpu()`, which reads a named recipe from the top-level
`export/` folder (installed as `edgebert.recipes`) for the instruction set of the target CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from .cpu import cpu_info
from .errors import InputError

WEIGHT_TYPES = ("qint8", "quint8")
QUANT_MODES = ("dynamic", "static")
BACKENDS = ("onnxruntime", "openvino")
CALIB_METHODS = ("minmax", "entropy", "percentile")
ISA_TO_RECIPE = {
    "avx512-vnni": "avx512-vnni",
    "avx-vnni": "avx512-vnni",  # same VNNI dot-product kernels, 256-bit wide
    "avx512": "avx2",  # AVX-512 without VNNI has the same U8S8 saturation problem as AVX2
    "avx2": "avx2",
    "arm64": "arm64",
    "generic": "avx2",
}


TASKS = ("sequence", "token")
POOLINGS = ("cls", "mean")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    model: str = "minilm-l6"  # short name of a bundled encoder, or a local checkpoint directory
    task: str = "sequence"  # "sequence": one label per text; "token": one label per word (e.g. BIO tags)
    pooling: str = "cls"  # sequence task: "cls" ([CLS] -> pooler) or "mean" (mean of real tokens)
    max_length: int | str = 128  # or "auto": the 99th percentile of the training texts' token counts
    epochs: int = 3
    batch_size: int = 16
    grad_accum: int = 1  # optimizer step every N batches: effective batch = batch_size x grad_accum
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int | None = None  # early stopping: stop after N epochs without a better dev score
    class_weights: str = "none"  # "auto": weight each class by n / (classes x count), for imbalanced data
    precision: str = "auto"  # "auto": bf16 autocast where the CPU has native bf16 (AVX512-BF16/AMX), else fp32
    extend_vocab: bool = False  # add the training texts' [UNK] characters to the vocabulary (see vocab.py)
    seed: int = 42
    text_column: str = "text"
    text_pair_column: str = "text_pair"  # used when the data has this column (sentence-pair tasks)
    label_column: str = "label"
    eval_batch_size: int = 64

    def __post_init__(self) -> None:
        _choice(self, "task", TASKS)
        _choice(self, "pooling", POOLINGS)
        _choice(self, "precision", PRECISIONS)
        _choice(self, "class_weights", ("none", "auto"))
        _positive(self, "epochs", "batch_size", "eval_batch_size", "grad_accum")
        if self.patience is not None:
            _positive(self, "patience")
        if self.max_length != "auto":
            if isinstance(self.max_length, str) and self.max_length.isdigit():
                self.max_length = int(self.max_length)
            if not isinstance(self.max_length, int) or not 3 <= self.max_length <= 512:
                raise InputError(
                    f"--max-length must be 'auto' or between 3 and 512 (BERT's position limit), got {self.max_length}."
                )
        _check_schedule(self)
        if self.task == "token" and self.pooling != "cls":
            raise InputError("--pooling applies to --task sequence; token classification labels every token.")


@dataclass
class AdaptConfig:
    """Domain-adaptive pre-training (masked-language modelling on the task's own texts); see adapt.py."""

    model: str = "minilm-l6"  # short name of a bundled encoder, or a local checkpoint directory
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 2e-4  # higher than fine-tuning: the MLM head and any new embedding rows start random
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mask_probability: float = 0.15  # BERT's: of the chosen tokens 80% -> [MASK], 10% random, 10% kept
    max_length: int = 128
    precision: str = "auto"
    extend_vocab: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        _choice(self, "precision", PRECISIONS)
        _positive(self, "epochs", "batch_size")
        if not 3 <= self.max_length <= 512:
            raise InputError(f"--max-length must be between 3 and 512, got {self.max_length}.")
        if not 0 < self.mask_probability < 1:
            raise InputError(f"--mask-probability must be in (0, 1), got {self.mask_probability}.")
        _check_schedule(self)


@dataclass
class QuantizationConfig:
    """How to quantize. Field names follow ONNX Runtime's quantize_dynamic/quantize_static."""

    mode: str = "dynamic"
    weight_type: str = "qint8"
    per_channel: bool = True
    reduce_range: bool = False  # 7-bit weights: avoids U8S8 overflow on AVX2/AVX-512 CPUs without VNNI
    op_types: list[str] = field(default_factory=lambda: ["MatMul", "Attention", "EmbedLayerNormalization"])
    exclude_nodes: list[str] = field(default_factory=list)
    calibration_method: str = "minmax"
    calibration_size: int = 200
    recipe: str = ""  # the named recipe this came from, for the manifest

    def __post_init__(self) -> None:
        _choice(self, "mode", QUANT_MODES)
        _choice(self, "weight_type", WEIGHT_TYPES)
        _choice(self, "calibration_method", CALIB_METHODS)
        _positive(self, "calibration_size")

    @classmethod
    def from_recipe(cls, name: str) -> QuantizationConfig:
        recipe = load_recipe(name)
        section = recipe.get("quantization")
        if section is None:
            raise InputError(f"Recipe '{name}' has no [quantization] section.")
        return cls(**_known(cls, section, f"recipe '{name}' [quantization]"), recipe=name)

    def with_options(self, **changes: Any) -> QuantizationConfig:
        """A copy with CLI overrides applied (None means: keep the recipe's value); re-validated."""
        return QuantizationConfig(**{**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def for_cpu(cls, isa: str | None = None) -> QuantizationConfig:
        """The dynamic-INT8 preset behind `--int8`: the recipe for `isa` (default: this machine's CPU)."""
        isa = isa or cpu_info().isa
        if isa not in ISA_TO_RECIPE:
            raise InputError(f"Unknown --target '{isa}'; choose one of {sorted(ISA_TO_RECIPE)}.")
        return cls.from_recipe(ISA_TO_RECIPE[isa])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportConfig:
    opset: int = 17
    optimize: bool = True  # ORT transformer fusions (attention, skip-layer-norm, bias-gelu, embed-layer-norm)
    require_attention_fusion: bool = True
    quantization: QuantizationConfig | None = None
    backend: str = "onnxruntime"  # "openvino" compiles the ONNX graph to OpenVINO IR
    max_drop_points: float | None = None  # accuracy budget: return sensitive layers to fp32 until met
    parity_atol: float = 1e-3  # max |Δlogit| allowed between torch and the fp32 ONNX graph

    def __post_init__(self) -> None:
        if not 14 <= self.opset <= 21:
            raise InputError(f"--opset must be between 14 and 21, got {self.opset}.")
        _choice(self, "backend", BACKENDS)
        if self.max_drop_points is not None:
            if self.quantization is None:
                raise InputError("--max-drop limits the INT8 accuracy drop; add --int8 (or --recipe).")
            if not 0 <= self.max_drop_points < 100:
                raise InputError(f"--max-drop is in accuracy points, between 0 and 100; got {self.max_drop_points}.")
        if self.backend == "openvino" and self.quantization and self.quantization.mode != "static":
            # NNCF's post-training quantization always calibrates activations.
            self.quantization = self.quantization.with_options(mode="static")

    @property
    def needs_calibration(self) -> bool:
        return self.quantization is not None and self.quantization.mode == "static"


def recipe_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml") for p in resources.files("edgebert.recipes").iterdir() if p.name.endswith(".toml")
    )


def recipe_backend(name: str) -> str:
    return load_recipe(name).get("backend", "onnxruntime")


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


def _known(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"{where} has unknown keys {unknown}; known keys: {sorted(names)}.")
    return values


def _check_schedule(config: Any) -> None:
    """The optimizer fields TrainConfig and AdaptConfig share."""
    if not 0 < config.learning_rate < 1:
        raise InputError(f"--lr must be in (0, 1), got {config.learning_rate}.")
    if not 0 <= config.warmup_ratio < 1:
        raise InputError(f"--warmup-ratio must be in [0, 1), got {config.warmup_ratio}.")


def _positive(config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise InputError(f"{name.replace('_', '-')} must be positive, got {getattr(config, name)}.")


def _choice(config: Any, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(config, name) not in allowed:
        raise InputError(f"{name.replace('_', '-')} must be one of {list(allowed)}, got '{getattr(config, name)}'.")
