"""The export stage's configs as validated dataclasses; every default lives here. Torch-free.

Which settings `--int8`, `--recipe`, `--target` and `--static` produce is decided in recipes.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.artifact import BACKENDS, OPENVINO_PRECISIONS, LongText
from ..core.errors import InputError
from ..core.validate import choice, positive
from ..modeling.vocabulary import TRIM_SCRIPTS

WEIGHT_TYPES = ("qint8", "quint8")
QUANT_MODES = ("dynamic", "static")
CALIB_METHODS = ("minmax", "entropy", "percentile")


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
        choice(self, "mode", QUANT_MODES)
        choice(self, "weight_type", WEIGHT_TYPES)
        choice(self, "calibration_method", CALIB_METHODS)
        positive(self, "calibration_size")

    def with_options(self, **changes: Any) -> QuantizationConfig:
        """A copy with CLI overrides applied (None means: keep the recipe's value); re-validated."""
        return QuantizationConfig(**{**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})

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
    light_last_layer: bool = False  # [CLS] models: the last layer computes position 0 only (modeling/last_layer.py)
    trim_vocabulary: bool = False  # keep only the pieces the coverage texts need (modeling/vocabulary.py)
    trim_keep_scripts: tuple[str, ...] = ()  # with trim_vocabulary: keep every piece of these scripts too ("cjk")
    # recorded in the manifest, and --eval/--test read texts so; None: as the checkpoint was trained, else truncate
    long_text: LongText | None = None
    # OpenVINO: what its float layers compute in ("bf16" needs a CPU with native bf16 at export: the evaluation and
    # golden logits are measured so); recorded in the manifest, which the runtime follows
    openvino_precision: str = "f32"

    def __post_init__(self) -> None:
        choice(self, "openvino_precision", OPENVINO_PRECISIONS)
        if self.openvino_precision != "f32" and self.backend != "openvino":
            raise InputError("--openvino-precision applies to OpenVINO artifacts; add --recipe openvino-int8.")
        if self.long_text and (problem := self.long_text.problem(512)):  # checked again at the model's length
            raise InputError(f"--long-text: {problem}.")
        if not 14 <= self.opset <= 21:
            raise InputError(f"--opset must be between 14 and 21, got {self.opset}.")
        if self.trim_keep_scripts and not self.trim_vocabulary:
            raise InputError("--trim-keep widens a trimmed vocabulary; add --trim-vocab DATA.")
        unknown = set(self.trim_keep_scripts) - set(TRIM_SCRIPTS)
        if unknown:
            raise InputError(f"--trim-keep knows {list(TRIM_SCRIPTS)}, not {sorted(unknown)}.")
        choice(self, "backend", BACKENDS)
        if self.max_drop_points is not None:
            if self.quantization is None:
                raise InputError("--max-drop limits the INT8 accuracy drop; add --int8 (or --recipe).")
            check_max_drop(self.max_drop_points)
        if self.backend == "openvino" and self.quantization and self.quantization.mode != "static":
            # NNCF's post-training quantization always calibrates activations.
            self.quantization = self.quantization.with_options(mode="static")

    @property
    def engine_options(self) -> dict[str, str]:
        """How the saved model is opened (runtime.backends.open_backend), as the manifest tells the runtime."""
        return {"precision": self.openvino_precision} if self.backend == "openvino" else {}

    @property
    def needs_calibration(self) -> bool:
        return self.quantization is not None and self.quantization.mode == "static"


# openvino-bf16: OpenVINO INT8 with its float layers in bf16, built only on CPUs with native bf16 (AMX, avx512_bf16)
TUNE_ENGINES = ("dynamic", "static", "openvino", "openvino-bf16")


@dataclass
class TuneConfig:
    """`export --tune`: which candidates to build and how long to time each."""

    max_drop_points: float = 0.5  # accuracy points against the teacher's fp32 graph on --eval
    engines: tuple[str, ...] = TUNE_ENGINES  # static and openvino also need --calib
    light_last_layer: bool | None = None  # None: with and without, where the model allows it
    target: str | None = None  # another CPU's ISA: choose from the recipe table, without timing
    rounds: int = 3
    seconds_per_round: float = 1.0
    trim_vocabulary: bool = False  # every candidate trimmed as `export --trim-vocab` would
    trim_keep_scripts: tuple[str, ...] = ()
    real_texts: int = 64  # eval texts timed per round
    call_size: int = 64  # texts per call when timing them: 1 chooses for an app that classifies one text at a time
    long_text: LongText | None = None  # as ExportConfig's, for every candidate

    def __post_init__(self) -> None:
        check_max_drop(self.max_drop_points)
        unknown = set(self.engines) - set(TUNE_ENGINES)
        if unknown or not self.engines:
            raise InputError(f"--tune-engines takes some of {list(TUNE_ENGINES)}; got {sorted(self.engines)}.")
        positive(self, "rounds")
        positive(self, "real_texts", "call_size")
        if not 0 < self.seconds_per_round <= 60:
            raise InputError(f"seconds per round must be in (0, 60], got {self.seconds_per_round}.")


def check_max_drop(points: float) -> None:
    """An accuracy budget in points: 0 (no drop at all) to 100 (record the drop, never refuse); NaN refused."""
    if not 0 <= points <= 100:
        raise InputError(f"--max-drop is in accuracy points, from 0 to 100; got {points}.")
