"""The artifact contract: the only thing build time writes and run time reads.

An artifact is a directory:
    edgebert.json    the manifest (`Manifest` below: every field typed and validated at load)
    model.onnx       (onnxruntime backend)  or  model.xml + model.bin (openvino backend)
    tokenizer.json   the exact tokenizer used in training

This module owns the file names, the task names, the manifest's sections and their checks (the sections that record
what the export measured are declared in measurements.py and validated here). The exporter
builds a `Manifest` and `write_manifest`s it; the runtime `read_manifest`s and `verify_files`. A manifest
that is malformed, lies about its files or points outside its directory is refused with an ArtifactError
naming the field. Torch-free, numpy-free.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArtifactError
from .files import resolves_inside, sha256_file
from .measurements import (  # the manifest's records of what the export measured
    AccuracyBudget,
    Evaluation,
    Tuning,
)
from .typed_json import decode, is_finite_number, reject_constant

MANIFEST = "edgebert.json"
TOKENIZER = "tokenizer.json"
CONFORMANCE = "conformance.jsonl"  # strings and their token ids: the kit for ports to other languages
MODEL_CARD = "README.md"  # what the model is, what it scored, how to load it (export/model_card.py)
FORMAT_VERSION = 2
MAX_MANIFEST_BYTES = 16 << 20  # a real one is a few hundred KB (golden logits of a token model included)

# One set of task names, used by training, the checkpoint, the manifest and the runtime.
SEQUENCE, TOKEN, MULTI_LABEL = "sequence", "token", "multi_label"
# sequence: one label per text (or pair); token: one label per word; multi_label: any number of labels per text
TASKS = (SEQUENCE, TOKEN, MULTI_LABEL)
BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8")
LAST_LAYERS = ("full", "cls_only")
ONNX_MODEL = "model.onnx"
OPENVINO_MODEL = "model.xml"  # its weights are model.bin beside it
HF_CONFIG = "config.json"  # a Hugging Face model directory's config
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
HF_TOKENIZER_FILES = (HF_TOKENIZER_CONFIG, "special_tokens_map.json")  # how transformers wraps tokenizer.json
MODEL_FILES = {"onnxruntime": [ONNX_MODEL], "openvino": [OPENVINO_MODEL, "model.bin"]}
MAX_GOLDEN_ATOL = 1.0  # a wider tolerance would accept a different model
LONG_TEXT_POLICIES = ("truncate", "chunk")  # what a text longer than max_length gets (LongText)
AGGREGATIONS = ("mean", "max")  # how a chunked text's window logits become its own
MAX_WINDOWS_LIMIT = 1024  # windows per text a manifest may ask for (the default is DEFAULT_MAX_WINDOWS)
OPENVINO_PRECISIONS = ("f32", "bf16")  # what OpenVINO computes the layers it keeps in floating point in
DEFAULT_MAX_WINDOWS = 16  # ~1,500 tokens at max_length 128: a long article read whole, a 10 MB text bounded


@dataclass
class LongText:
    """What the runtime does with a text longer than max_length tokens (runtime/windows.py; docs/artifact-format.md
    spells it out for ports).

    truncate: keep the first max_length tokens. chunk: windows of max_length tokens, each the tokenizer's special
    tokens around a slice of the text's pieces, consecutive windows sharing `stride` pieces, the last one ending at
    the text's end, at most `max_windows` (past them the text is cut, and the answer says so). A sequence model's
    window logits are averaged (`aggregate`: "mean") or maxed per label ("max") into the text's logits; a token model
    takes each token's logits from the window where it sits most centrally."""

    policy: str = "truncate"
    stride: int | None = None  # pieces shared by consecutive windows; None: a quarter of a window's pieces
    max_windows: int = DEFAULT_MAX_WINDOWS
    aggregate: str = "mean"

    def problem(self, max_length: int) -> str | None:
        """What is wrong with these settings for a model of `max_length` tokens, or None."""
        if self.policy not in LONG_TEXT_POLICIES:
            return f"policy is {self.policy!r}, not one of {list(LONG_TEXT_POLICIES)}"
        if self.aggregate not in AGGREGATIONS:
            return f"aggregate is {self.aggregate!r}, not one of {list(AGGREGATIONS)}"
        if isinstance(self.max_windows, bool) or not 1 <= self.max_windows <= MAX_WINDOWS_LIMIT:
            return f"max_windows is {self.max_windows!r}, outside 1..{MAX_WINDOWS_LIMIT}"
        if self.stride is not None and (isinstance(self.stride, bool) or not 0 <= self.stride <= max_length // 2 - 2):
            return f"stride is {self.stride!r}, outside 0..{max_length // 2 - 2} (half a window of {max_length} tokens)"
        return None

    def describe(self, max_length: int) -> str:
        """The policy in words, as the export summary and the model card say it."""
        if self.policy == "truncate":
            return f"cut at {max_length} tokens"
        stride = "a quarter" if self.stride is None else f"{self.stride} tokens"
        return f"read whole in windows of {max_length} tokens ({stride} shared, up to {self.max_windows}), logits {self.aggregate}"


@dataclass
class GoldenSample:
    """Texts with the token ids and logits the artifact produced at export; replayed at load, one text per call."""

    texts: list[str]
    input_ids: list[list[int]]
    logits: list[Any]  # per text: [num_labels] floats (sequence), or [tokens][num_labels] (token)
    atol: float  # allowed max |Δlogit| on another machine (INT8 kernels differ slightly by CPU)


@dataclass
class Quantization:
    """The settings the INT8 model was built with (see export/recipes.py for where they are decided)."""

    recipe: str  # named recipe from export/, or "" for a custom one
    mode: str  # "dynamic" | "static"
    weight_type: str  # "qint8" | "quint8"
    per_channel: bool
    reduce_range: bool
    op_types: list[str]
    exclude_nodes: list[str]
    calibration_method: str
    calibration_size: int
    export_cpu: str  # ISA of the machine that exported it
    calibration_source: str | None = None
    calibration_texts: int | None = None
    accuracy_budget: AccuracyBudget | None = None


def quantizes_per_call(backend: str, quantization) -> bool:
    """True when the graph picks activation scales per call (ONNX Runtime's DynamicQuantizeLinear, QAttention),
    so a row's logits would depend on what else shares its batch. Such models are run one unpadded row per
    call (runtime/backends.RowByRow). `quantization`: a Quantization record or a build QuantizationConfig.

    ORT static mode quantizes the dense MatMuls with calibrated scales but the fused Attention ops
    dynamically (export/quantize.py), so it counts unless MatMul is its only op type. OpenVINO INT8 is static.
    """
    if backend != "onnxruntime" or quantization is None:
        return False
    return quantization.mode == "dynamic" or bool(set(quantization.op_types) - {"MatMul"})


def is_full_range_u8s8(backend: str, quantization) -> bool:
    """True for ONNX Runtime INT8 with full 8-bit signed weights (no reduce_range): right on VNNI and arm64,
    but saturating on x86 without VNNI (core/cpu.SATURATING_ISAS). `quantization`: a Quantization record or None."""
    q = quantization
    return backend == "onnxruntime" and q is not None and not q.reduce_range and q.weight_type == "qint8"


@dataclass
class VocabularyTrim:
    """How `export --trim-vocab` cut the tokenizer and the embedding matrix (modeling/vocabulary.py)."""

    original_size: int  # pieces before
    kept: int  # pieces (= embedding rows) after
    coverage: list[str]  # the data whose pieces were kept
    rule: str  # what else was kept
    keep_scripts: list[str] = field(default_factory=list)
    checked_rows: int = 0  # covered rows re-tokenized at export: same ids (renumbered), same torch logits
    max_abs_logit_diff: float = 0.0


@dataclass
class Optimization:
    opset: int
    fusions: dict[str, int] = field(default_factory=dict)  # fused op -> count (Attention, SkipLayerNormalization...)
    unfused: list[str] = field(default_factory=list)  # per-layer fusions that did not happen on every layer
    last_layer: str = "full"  # "cls_only": the last encoder layer computes position 0 only ([CLS] pooling)
    vocabulary: VocabularyTrim | None = None  # set when the export trimmed the vocabulary
    note: str = ""  # e.g. why the graph runs unfused


@dataclass
class Source:
    checkpoint: str
    base_model: str
    pooling: str
    train_dev_metrics: dict[str, float] | None = None
    pretrained: dict[str, Any] | None = None  # the encoder's registry package, version, file digest, licence


@dataclass
class Manifest:
    task: str
    labels: list[str]  # in logit order
    max_length: int  # tokens per model call; longer texts as `long_text` says
    backend: str
    precision: str
    model_files: list[str]
    files: dict[str, str]  # file name -> sha256, for every file but the manifest
    optimization: Optimization
    source: Source
    quantization: Quantization | None = None
    golden: GoldenSample | None = None
    golden_opt_out: str | None = None  # why an export chose to record no golden sample
    evaluation: Evaluation | None = None  # on --eval: the data that selected (budget, tuning)
    test_evaluation: Evaluation | None = None  # on --test: held-out data nothing was selected on
    thresholds: list[float] | None = None  # multi_label: per label, the sigmoid score at or above which it is given
    tuning: Tuning | None = None
    tools: dict[str, str] = field(default_factory=dict)  # versions of the tools that produced it
    long_text: LongText = field(default_factory=LongText)  # texts longer than max_length: truncated or chunked
    # OpenVINO artifacts: the precision their float layers were evaluated and their golden logits recorded in ("bf16"
    # only where the exporting CPU computes bf16 natively); a CPU without native bf16 runs them in f32
    openvino_precision: str = "f32"
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> Manifest:
        """Decode and validate a parsed manifest; any problem is an ArtifactError naming the field."""
        if not isinstance(data, dict):
            raise ArtifactError(f"{where} is not an edgebert manifest (a JSON object). Re-export the artifact.")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{where} has format version {version!r}; this edgebert reads version {FORMAT_VERSION}. "
                "Re-export the artifact with this edgebert version."
            )
        manifest = decode(cls, data, "", where)
        manifest.validate(where)
        return manifest

    def validate(self, where: str | Path) -> None:
        """The checks types alone cannot express: choices, ranges, file names, and golden-sample shapes."""

        def bad(field_name: str, problem: str) -> ArtifactError:
            return ArtifactError(f"{where}: field '{field_name}' {problem}. Re-export the artifact.")

        self._validate_choices(bad)
        self._validate_files(bad)
        self._validate_task_fields(bad)
        if self.golden is None:
            if not self.golden_opt_out:
                raise bad("golden", "is missing (and no golden_opt_out was recorded at export)")
            return
        self._validate_golden(bad)

    def _validate_choices(self, bad) -> None:
        for name, allowed in (("task", TASKS), ("backend", BACKENDS), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise bad(name, f"is {getattr(self, name)!r}, not one of {list(allowed)}")
        if self.optimization.last_layer not in LAST_LAYERS:
            raise bad("optimization.last_layer", f"is {self.optimization.last_layer!r}, not one of {list(LAST_LAYERS)}")
        if self.optimization.last_layer == "cls_only" and (self.task, self.source.pooling) != (SEQUENCE, "cls"):
            raise bad("optimization.last_layer", "is 'cls_only', which only a [CLS]-pooled sequence model can be")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels) or not all(self.labels):
            raise bad("labels", "must list at least 2 distinct, non-empty label names")
        if not 3 <= self.max_length <= 512:  # the BERT family's position limit: beyond it the graph has no rows
            raise bad("max_length", f"is {self.max_length}, outside 3..512")
        if (problem := self.long_text.problem(self.max_length)) is not None:
            raise bad("long_text", problem)
        if self.openvino_precision not in OPENVINO_PRECISIONS or (
            self.openvino_precision != "f32" and self.backend != "openvino"
        ):
            raise bad("openvino_precision", f"is {self.openvino_precision!r}: 'f32', or 'bf16' for an OpenVINO model")

    def _validate_files(self, bad) -> None:
        if self.model_files != MODEL_FILES[self.backend]:
            raise bad(
                "model_files", f"is {self.model_files}; a {self.backend} artifact has {MODEL_FILES[self.backend]}"
            )
        for name, digest in self.files.items():
            if not is_plain_name(name) or name == MANIFEST:
                raise bad("files", f"names {name!r}: every file must be a plain name inside the artifact directory")
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise bad("files", f"has {digest!r} for {name}, not a sha256 hex digest")
        missing = [name for name in [*self.model_files, TOKENIZER] if name not in self.files]
        if missing:
            raise bad("files", f"has no checksum for {missing}: every file the runtime opens must be listed")

    def _validate_task_fields(self, bad) -> None:
        if (self.task == MULTI_LABEL) != (self.thresholds is not None):
            raise bad("thresholds", "must be present exactly when the task is multi_label")
        if self.thresholds is not None and (
            len(self.thresholds) != len(self.labels) or not all(0 < t < 1 for t in self.thresholds)
        ):
            raise bad("thresholds", "must hold one threshold in (0, 1) per label")
        if (self.precision == "int8") != (self.quantization is not None):
            raise bad("quantization", "must be present exactly when precision is int8")

    def _validate_golden(self, bad) -> None:
        golden, width = self.golden, len(self.labels)
        if not 0 < golden.atol <= MAX_GOLDEN_ATOL:
            raise bad("golden.atol", f"is {golden.atol}; it must be in (0, {MAX_GOLDEN_ATOL}]")
        if not golden.texts or not len(golden.texts) == len(golden.input_ids) == len(golden.logits):
            raise bad("golden", "must hold one token-id list and one logits entry per text")
        for i, (ids, logits) in enumerate(zip(golden.input_ids, golden.logits, strict=True)):
            rows = logits if self.task == TOKEN else [logits]
            if self.task == TOKEN and (not isinstance(logits, list) or len(logits) != len(ids)):
                raise bad(f"golden.logits[{i}]", f"must have one row per token ({len(ids)})")
            for row in rows:
                if not isinstance(row, list) or len(row) != width or not all(is_finite_number(x) for x in row):
                    raise bad(f"golden.logits[{i}]", f"must be rows of {width} finite numbers (one per label)")
            if len(ids) > self.max_length:
                raise bad(f"golden.input_ids[{i}]", f"has {len(ids)} tokens, more than max_length {self.max_length}")
        if max(len(ids) for ids in golden.input_ids) != self.max_length:
            raise bad("golden", f"must include a text truncated at max_length ({self.max_length} tokens)")


def is_plain_name(name: str) -> bool:
    """A file name that stays inside its directory: no separators, no '..', not absolute, not hidden."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and not name.startswith(".")


def read_manifest(bundle: Path) -> Manifest:
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise ArtifactError(f"Artifact not found: {bundle} is not a directory. Create one with `edgebert export`.")
    path = bundle / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{bundle} is not an edgebert artifact: {MANIFEST} is missing. Run `edgebert export`.")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ArtifactError(f"{path} is over {MAX_MANIFEST_BYTES >> 20} MB; no real manifest is. Re-export it.")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ArtifactError(f"Cannot read {path} ({exc.strerror}); check its permissions.") from exc
    except UnicodeDecodeError as exc:
        raise ArtifactError(f"{path} is not UTF-8 JSON ({exc.reason}). Re-export the artifact.") from exc
    try:
        data = json.loads(text, parse_constant=reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise ArtifactError(f"{path} is corrupt ({exc}). Re-export the artifact.") from exc
    except RecursionError as exc:
        raise ArtifactError(f"{path} is nested too deeply to be a manifest. Re-export the artifact.") from exc
    return Manifest.from_dict(data, path)


def read_verified(bundle: Path, manifest: Manifest, name: str, *, verify: bool = True) -> bytes:
    """A file's bytes, read once and (with verify) checked against the manifest there: what the caller then uses
    is exactly what was checked, whatever happens to the file on disk afterwards."""
    path = Path(bundle) / name
    _refuse_escaping_link(Path(bundle), path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"Artifact {bundle} is missing {name}. Re-export it or copy the whole directory.") from None
    except OSError as exc:
        raise ArtifactError(f"Cannot read {path} ({exc.strerror}); check its permissions.") from exc
    if verify and hashlib.sha256(data).hexdigest() != manifest.files.get(name):
        raise ArtifactError(
            f"Artifact file {path} does not match its checksum in {MANIFEST}: it was truncated or altered. "
            "Re-export or re-copy the artifact."
        )
    return data


def _refuse_escaping_link(bundle: Path, path: Path) -> None:
    if not resolves_inside(path, bundle):
        raise ArtifactError(f"Artifact file {path} links outside the artifact directory; refusing to read it.")


def verify_files(bundle: Path, manifest: Manifest, *, skip: tuple[str, ...] = ()) -> None:
    """Refuse a bundle whose files are missing, truncated, altered or outside it, naming the file. `skip`: files
    the caller reads and checks itself (read_verified)."""
    bundle = Path(bundle)
    for name, expected in manifest.files.items():
        if name in skip:
            continue
        path = bundle / name
        _refuse_escaping_link(bundle, path)
        if not path.is_file():
            raise ArtifactError(f"Artifact {bundle} is missing {name}. Re-export it or copy the whole directory.")
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise ArtifactError(f"Cannot read {path} ({exc.strerror}); check its permissions.") from exc
        if actual != expected:
            raise ArtifactError(
                f"Artifact file {path} does not match its checksum in {MANIFEST}: it was truncated or altered. "
                "Re-export or re-copy the artifact."
            )


def write_manifest(bundle: Path, manifest: Manifest) -> None:
    """Checksum every file in the bundle, validate, and write the manifest last."""
    bundle = Path(bundle)
    manifest.files = {p.name: sha256_file(p) for p in sorted(bundle.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest.validate(bundle / MANIFEST)
    (bundle / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
