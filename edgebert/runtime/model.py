"""What every front-door class shares: opening a bundle, checking it, and running rows through the backend.

`ArtifactModel.load` reads the manifest (validated by core/artifact.py), verifies checksums, opens the
tokenizer and the inference engine, then replays the golden sample and checks the model's output width
against the labels, so a swapped, corrupt or lying artifact is refused before it answers anything.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..core.artifact import (
    OPENVINO_PRECISIONS,
    TOKENIZER,
    LongText,
    Manifest,
    is_full_range_u8s8,
    quantizes_per_call,
    read_verified,
    verify_files,
)
from ..core.cpu import cpu_info, usable_cpu_count
from ..core.errors import ArtifactError, InputError
from ..core.fleet import is_fleet
from .backends import Backend, ModelBytes, open_backend
from .fleet import probe_variant, resolve_variant
from .tokenization import TextEncoder

ModelT = TypeVar("ModelT", bound="ArtifactModel")
OPENVINO_MODES = ("latency", "throughput")


class ArtifactModel:
    """Subclasses set TASK and say how far their outputs are from the golden logits (`_golden_diff`)."""

    TASKS: tuple[str, ...] = ()  # the manifest tasks this front door serves: the one task -> front door map
    EXAMPLE_CALL: str = ""  # how an app asks it, for model cards: 'model.predict("…")'
    IN_JAVASCRIPT: bool = False  # examples/node and examples/web run its artifacts
    LABELS_TOKENS: bool = False  # answers per word (entities) rather than per text

    def __init__(self, manifest: Manifest, encoder: TextEncoder, backend: Backend, *, batch_size: int = 32) -> None:
        self.manifest = manifest
        self.encoder = encoder
        self.backend = backend
        self.batch_size = batch_size
        self.variant: str | None = None  # the fleet bundle variant this is, if loaded from one

    @classmethod
    def load(
        cls: type[ModelT],
        path: str | Path,
        threads: int | None = None,
        *,
        verify: bool = True,
        check_golden: bool = True,
        batch_size: int = 32,
        openvino_mode: str = "latency",
        openvino_precision: str | None = None,
        spinning: bool = False,
        allow_saturation: bool = False,
        variant: str | None = None,
        probe: bool = False,
        public_key: str | Path | None = None,
    ) -> ModelT:
        """Load and check an artifact, or the right variant of a fleet bundle (`edgebert bundle`).

        threads: intra-op threads; default is the CPUs this process may use (affinity, cgroup quota).
        verify: check every file's sha256 against the manifest.
        check_golden: replay the golden sample stored at export and refuse mismatching outputs.
        batch_size: texts per inference call (texts of similar length are batched together). Artifacts whose
            INT8 scales are picked per call run one text per call whatever this says, so that an answer never
            depends on what else was in the call.
        allow_saturation: load a full-range INT8 artifact (built for VNNI CPUs) on a CPU without VNNI anyway.
        spinning: let inference threads busy-wait between calls (ONNX Runtime). Off: an app that calls now
            and then does not burn CPU while idle; on: slightly lower latency for back-to-back calls.
        variant: a fleet bundle's variant to load (refused if unsafe on this CPU); default: the bundle's choice
            for this CPU's instruction set, skipping unsafe variants and engines that are not installed (warned).
        probe: for a fleet bundle, time every safe variant briefly (1x128) and load the fastest.
        openvino_precision: what OpenVINO computes its floating-point layers in. Default: the manifest's (the
            precision the artifact was evaluated in: "bf16" when `export --tune` chose it on a CPU with native bf16;
            a CPU without it runs such an artifact in "f32", with a warning). "bf16" on a CPU that has it (avx512_bf16,
            AMX): faster, and answers may move slightly; the golden replay still has to pass.
        public_key: refuse the artifact unless it is signed (`export --sign`) by this key's holder and no file has
            changed since (needs `pip install 'edgebert[sign]'`).
        """
        _check_options(threads, batch_size, openvino_mode, openvino_precision)
        if public_key is not None:
            from ..core.signature import verify_signature

            verify_signature(Path(path), Path(public_key))
        options = dict(verify=verify, check_golden=check_golden, batch_size=batch_size, openvino_mode=openvino_mode)
        options.update(openvino_precision=openvino_precision)
        options.update(spinning=spinning, allow_saturation=allow_saturation)
        if probe and variant is None and is_fleet(path):  # every safe variant loaded with these options; fastest kept
            return probe_variant(Path(path), lambda name: cls.load(path, threads, variant=name, **options))
        choice = resolve_variant(Path(path), variant)
        bundle, chosen, manifest = choice.path, choice.name, choice.manifest
        if manifest.task not in cls.TASKS:
            raise ArtifactError(
                f"{bundle} holds a '{manifest.task}' model, not {' or '.join(repr(t) for t in cls.TASKS)}; "
                f"load it with {front_door_name(manifest.task)}."
            )
        # The model and tokenizer are read once and checked in memory: what answers is what was verified, even if
        # the files on disk are replaced while the app runs (a re-export with --force, a copy over it).
        opened = (*manifest.model_files, TOKENIZER)
        if verify:
            verify_files(bundle, manifest, skip=opened)
        if not allow_saturation:
            _refuse_saturating_int8(bundle, manifest)
        model_bytes, tokenizer_bytes = _read_opened(bundle, manifest, verify)
        encoder = TextEncoder.from_bytes(tokenizer_bytes, manifest.max_length, where=bundle / TOKENIZER)
        options = {}
        if manifest.backend == "openvino":
            options = {"mode": openvino_mode, "precision": _openvino_precision(manifest, openvino_precision, bundle)}
        row_by_row = quantizes_per_call(manifest.backend, manifest.quantization)  # same answer whatever the batch
        backend = open_backend(
            manifest.backend,
            model_bytes,
            threads or usable_cpu_count(),
            row_by_row=row_by_row,
            spinning=spinning,
            **options,
        )
        model = cls(manifest, encoder, backend, batch_size=batch_size)
        model.variant = chosen
        if check_golden and manifest.golden:
            model._check_golden(bundle)
        return model

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    def run_batch(self, group, rows: list) -> tuple[list, dict[str, float]]:
        """A server's micro-batch (serve/batcher.py): each row's answer, and the seconds per stage."""
        raise NotImplementedError

    def long_text_policy(self, long_text: str | LongText | None = None) -> LongText:
        """What texts longer than max_length get: the artifact's policy (`manifest.long_text`), or `long_text`:
        "truncate" or "chunk" (with the artifact's stride and window cap), or a whole LongText."""
        if long_text is None:
            return self.manifest.long_text
        policy = replace(self.manifest.long_text, policy=long_text) if isinstance(long_text, str) else long_text
        if not isinstance(policy, LongText):
            raise InputError("long_text: must be 'truncate', 'chunk' or a LongText.")
        if problem := policy.problem(self.manifest.max_length):
            raise InputError(f"long_text: {problem}.")
        return policy

    def _check_golden(self, bundle: Path) -> None:
        golden = self.manifest.golden
        ids, type_ids = self.encoder.encode(golden.texts)
        if ids != golden.input_ids:
            raise ArtifactError(
                f"{bundle}: the tokenizer gives different token ids than at export; the tokenizers package "
                "version or tokenizer.json differs. Install the version in the manifest's 'tools' or re-export."
            )
        diff = self._golden_diff(ids, type_ids, golden.logits)
        if not diff <= golden.atol:  # `not <=` also refuses NaN
            raise ArtifactError(
                f"{bundle}: outputs differ from those recorded at export (max |Δlogit| {diff:.4g} > {golden.atol}). "
                "The runtime version or this CPU's kernels differ from the export machine; re-export for this "
                "CPU (`edgebert export --target ...`) or load with check_golden=False to accept it."
            )

    def _golden_diff(self, ids: list, type_ids: list, golden_logits: list) -> float:
        raise NotImplementedError


def run_checked(backend: Backend, batch, num_labels: int) -> np.ndarray:
    """The backend's logits for one batch, refused if their width is not the label count or they are not finite."""
    logits = backend.run(batch.input_ids, batch.attention_mask, batch.token_type_ids)
    if logits.shape[-1] != num_labels:
        raise ArtifactError(
            f"The model outputs {logits.shape[-1]} scores per row but the manifest lists {num_labels} labels: "
            "the manifest does not belong to this model. Re-export the artifact."
        )
    if not np.isfinite(logits).all():
        raise ArtifactError("The model produced NaN or infinite logits; the artifact is broken. Re-export it.")
    return logits


def batched_logits(
    backend: Backend, encoder: TextEncoder, ids: list, type_ids: list, batch_size: int, num_labels: int
) -> np.ndarray:
    """Run already-tokenized rows through `backend` in length buckets; (N, num_labels) logits in input order."""
    logits = np.zeros((len(ids), num_labels), dtype=np.float32)
    for batch in encoder.batches(ids, type_ids, batch_size):
        logits[batch.indices] = run_checked(backend, batch, num_labels)
    return logits


def batched_token_logits(
    backend: Backend, encoder: TextEncoder, ids: list, type_ids: list, batch_size: int, num_labels: int
) -> list[np.ndarray]:
    """Per-token logits for already-tokenized rows: a (T_i, num_labels) array per row, in input order."""
    rows: list[np.ndarray] = [np.zeros((0, num_labels), np.float32)] * len(ids)
    for batch in encoder.batches(ids, type_ids, batch_size):
        logits = run_checked(backend, batch, num_labels)  # (B, T, K)
        for row, i in enumerate(batch.indices):
            rows[i] = logits[row, : len(ids[i])]
    return rows


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _openvino_precision(manifest: Manifest, asked: str | None, bundle: Path) -> str:
    """The caller's choice (checked in _check_options), else the manifest's where this CPU computes it natively."""
    if asked is not None:
        return asked
    if manifest.openvino_precision == "bf16" and not cpu_info().native_bf16:
        warnings.warn(
            f"{bundle} was evaluated with bf16 float layers; this CPU has no native bf16, so they run in f32 (answers "
            "may move slightly; the golden replay still checks them).",
            stacklevel=3,
        )
        return "f32"
    return manifest.openvino_precision


def _check_options(threads: int | None, batch_size: int, openvino_mode: str, openvino_precision: str | None) -> None:
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InputError(
            f"threads must be a whole number of at least 1 (or None for all usable CPUs), got {threads!r}."
        )
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number of at least 1, got {batch_size!r}.")
    if openvino_mode not in OPENVINO_MODES:
        raise InputError(f"openvino_mode must be one of {list(OPENVINO_MODES)}, got {openvino_mode!r}.")
    if openvino_precision is not None and openvino_precision not in OPENVINO_PRECISIONS:
        raise InputError(f"openvino_precision must be one of {list(OPENVINO_PRECISIONS)}, got {openvino_precision!r}.")
    if openvino_precision == "bf16" and not cpu_info().native_bf16:
        raise InputError(
            "openvino_precision='bf16' needs a CPU with native bf16 (avx512_bf16 or AMX); this one has none, where "
            "bf16 would be emulated and slower. Use the default, 'f32'."
        )


def _read_opened(bundle: Path, manifest: Manifest, verify: bool) -> tuple[ModelBytes, bytes]:
    files = tuple(read_verified(bundle, manifest, name, verify=verify) for name in manifest.model_files)
    return ModelBytes(bundle / manifest.model_files[0], files), read_verified(
        bundle, manifest, TOKENIZER, verify=verify
    )


def _refuse_saturating_int8(bundle: Path, manifest: Manifest) -> None:
    """A full-range U8S8 artifact (weights using all 8 bits) on an x86 CPU without VNNI: ONNX Runtime's kernels
    there add pairs of u8 x s8 products in saturating 16-bit arithmetic, so large activations give wrong outputs
    that a few golden texts may not reveal."""
    q = manifest.quantization
    if not is_full_range_u8s8(manifest.backend, q):
        return
    cpu = cpu_info()  # read only for full-range INT8 artifacts
    if cpu.saturates_u8s8:
        raise ArtifactError(
            f"{bundle} holds INT8 weights for CPUs with VNNI (recipe '{q.recipe or 'custom'}', full 8-bit range); this "
            f"CPU ({cpu.model}, {cpu.isa}) has no VNNI, so ONNX Runtime's U8S8 kernels would saturate and some outputs "
            "would be wrong. Re-export for this CPU (`edgebert export ... --int8`, or `--target avx2` for a fleet), or "
            "load with allow_saturation=True to accept it."
        )


def front_door_name(task: str) -> str:
    """The name of the class that loads `task`'s artifacts, for messages (each front door lists its TASKS)."""
    return next((door.__name__ for door in ArtifactModel.__subclasses__() if task in door.TASKS), "the matching class")
