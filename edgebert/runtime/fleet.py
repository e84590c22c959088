"""Loading a fleet bundle (core/fleet.py): pick the variant for this CPU, by the bundle's table or a short probe."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..core.artifact import read_manifest
from ..core.cpu import cpu_info
from ..core.errors import InputError
from ..core.fleet import Choice, choose_variant, is_fleet, read_fleet, unsafe_reason, variant_manifest
from ..core.timing import measure_interleaved, median_ms, synthetic_batch

ModelT = TypeVar("ModelT")
PROBE_SHAPE = (1, 128)  # what an interactive app sends; the probe times each safe variant on it


def installed_backends() -> set[str]:
    return {"onnxruntime"} | ({"openvino"} if importlib.util.find_spec("openvino") else set())


def resolve_variant(path: Path, variant: str | None) -> Choice:
    """What to load at `path`: a plain artifact (name None), or the fleet bundle's variant for this CPU; either way
    with its manifest, read once."""
    if not is_fleet(path):
        if variant is not None:
            raise InputError(f"{path} is a single artifact, not a fleet bundle; drop variant={variant!r}.")
        return Choice(None, path, {}, read_manifest(path))
    choice = choose_variant(path, cpu_info(), installed_backends(), name=variant)
    _warn_if_skipped(path, choice)
    return choice


def probe_variant(path: Path, load: Callable[[str], ModelT], seconds: float = 0.3) -> ModelT:
    """The fastest safe variant on this CPU at 1x128: each loaded by `load(name)` (checked as any load is), timed
    interleaved; the winner is returned as loaded, the others dropped."""
    fleet, cpu, engines = read_fleet(path), cpu_info(), installed_backends()
    safe = [n for n in fleet.variants if unsafe_reason(variant_manifest(path, fleet, n), cpu, engines) is None]
    if not safe:
        choose_variant(path, cpu, engines)  # raises, naming each variant's reason
    models = {n: load(n) for n in safe}
    vocab = min(m.encoder.tokenizer.get_vocab_size() for m in models.values())
    feed = synthetic_batch(*PROBE_SHAPE, vocab_size=vocab)
    runs = {n: (lambda m=m: m.backend.run(*feed)) for n, m in models.items()}
    samples = measure_interleaved(runs, rounds=3, seconds_per_round=seconds / 3, warmup=1)
    return models[min(samples, key=lambda n: median_ms(samples[n]))]


def _warn_if_skipped(path: Path, choice: Choice) -> None:
    if choice.skipped:
        reasons = "; ".join(f"{k}: {v}" for k, v in choice.skipped.items())
        warnings.warn(f"{path}: using variant {choice.name}; skipped {reasons}", stacklevel=4)
