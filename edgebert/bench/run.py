"""`edgebert bench`: latency, cold start, memory and accuracy drift on the target CPU, side by side.

Torch-free unless the reference is a training checkpoint.

Fairness rules: every variant runs the same inputs with the same thread count, in one process,
interleaved in rounds (the order rotates each round) so machine noise hits all of them alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.artifact import TOKENIZER, LongText
from ..core.cpu import cpu_info, usable_cpu_count
from ..core.errors import InputError
from ..core.progress import progress_bar
from ..core.timing import LatencyStats, measure_interleaved, summarize, synthetic_batch
from ..data.text import TextDataset
from ..modeling.checkpoint import is_checkpoint
from ..tasks import Encoded, Task, task_of
from .config import BenchConfig


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """'1x16,32x128' -> [(1, 16), (32, 128)] (batch x tokens)."""
    shapes = []
    for part in text.split(","):
        try:
            batch, tokens = (int(x) for x in part.lower().split("x"))
        except ValueError:
            raise InputError(f"Bad shape '{part}' in --shapes; write BATCHxTOKENS, e.g. 1x128,32x128.") from None
        if not 1 <= batch <= 1024 or not 3 <= tokens <= 512:
            raise InputError(f"Bad shape '{part}': batch must be between 1 and 1024 and tokens between 3 and 512.")
        shapes.append((batch, tokens))
    return shapes


def accuracy_drift(
    task: Task, reference_logits: np.ndarray, variant_logits: dict[str, np.ndarray], data: TextDataset
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Per variant, what it changed against the reference, in the task's own terms: answers changed and logit
    distances; where the data is labelled also the task's metric (accuracy, or micro F1 for multi-label) with 95%
    intervals of the score and of the paired drop. And the reference's own metrics (None without labels)."""
    if data.labels is None:
        return {name: _changes(task, reference_logits, logits) for name, logits in variant_logits.items()}, None
    truth = Encoded([], [], task.targets(data))  # the evaluation reads targets only: logits are given

    def evaluation(logits: np.ndarray, reference: np.ndarray | None):
        return task.artifact_evaluation(
            source=data.source,
            encoded=truth,
            candidate=lambda: logits,
            fp32_reference=reference,
            fp32_graph=None,
            encoder=None,
            candidate_engine=None,
        )

    drifts = {}
    for name, logits in variant_logits.items():
        e = evaluation(logits, reference_logits)
        drifts[name] = {
            "n": e.n,
            **asdict(e.drift),  # agreement, changed answers, logit distances, as the export records them
            "metric": e.metric,
            "reference_score": e.reference_score,
            "candidate_score": e.score,
            "drop_points": e.drop_points,
            "score_ci95": e.score_ci95,
            "drop_ci95": e.drop_ci95,
            "candidate_macro_f1": e.metrics["macro_f1"],
            "points_per_text": 100 / len(data),
        }
    reference = evaluation(reference_logits, None)
    return drifts, {**reference.metrics, "metric": reference.metric, "score": reference.score}


def _changes(task: Task, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    changed = np.flatnonzero(task.changed_answers(reference, candidate))
    delta = np.abs(reference - candidate)
    return {
        "n": len(reference),
        "agreement": 1 - len(changed) / len(reference) if len(reference) else 1.0,
        "flips": len(changed),
        "flipped_indices": changed.tolist(),
        "max_abs_logit_diff": float(delta.max()) if delta.size else 0.0,
        "mean_abs_logit_diff": float(delta.mean()) if delta.size else 0.0,
    }


def flipped_examples(task: Task, data: TextDataset, reference: np.ndarray, variant: np.ndarray) -> list[dict]:
    rows = []
    for i in np.flatnonzero(task.changed_answers(reference, variant)):
        rows.append(
            {
                "index": int(i),
                "text": data.texts[i][:500],
                "true": data.labels[i] if data.labels else None,
                "reference": task.answer(reference[i]),
                "variant": task.answer(variant[i]),
            }
        )
    return rows


COLD_START = """
import json, sys, time
t0 = time.perf_counter()
from edgebert import Classifier
clf = Classifier.load(sys.argv[1], threads=int(sys.argv[2]))
clf.predict("cold start probe")
elapsed = (time.perf_counter() - t0) * 1000
try:  # Linux: this process's own high-water mark (ru_maxrss would carry the forking parent's over exec)
    peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
except (OSError, StopIteration):
    try:  # macOS (bytes) and other Unixes (KiB); Windows has neither
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)
    except ImportError:
        peak = None
print(json.dumps({"import_load_predict_ms": elapsed, "peak_rss_mb": peak}))
"""


def cold_start(artifact: Path, threads: int) -> dict[str, float]:
    """A fresh interpreter: time to first prediction, and its peak resident memory (VmHWM)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", COLD_START, str(artifact), str(threads)], capture_output=True, text=True, timeout=300
    )
    wall = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise InputError(f"Cold-start probe failed for {artifact}: {result.stderr.strip().splitlines()[-1:]}")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["process_wall_ms"] = wall
    return report


def fingerprint(threads: int) -> dict[str, Any]:
    info = cpu_info()
    versions = {"edgebert": __version__, "python": sys.version.split()[0]}
    for module in ("onnxruntime", "openvino", "numpy", "tokenizers", "torch"):
        if module == "torch" and module not in sys.modules:
            continue  # never import torch just to report its version
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return {
        "cpu": info.model,
        "cpu_identity": info.identity,
        "arch": info.arch,
        "isa": info.isa,
        "flags": info.notable_flags,
        "cpu_record": info.record(),  # vendor, microarchitecture by features, VM or not, load at start
        "usable_cpus": usable_cpu_count(),
        "host_cpus": os.cpu_count(),
        "threads": threads,
        "versions": versions,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def model_size_mb(paths: Sequence[Path]) -> float:
    return sum(Path(p).stat().st_size for p in paths) / 1e6


def as_dict(stats: LatencyStats) -> dict[str, Any]:
    return asdict(stats)


# ---------------------------------------------------------------- orchestration
class _Variant:
    """One thing to benchmark: an artifact, or a torch checkpoint as the reference."""

    def __init__(self, name: str, path: Path, threads: int) -> None:
        self.name, self.path = name, Path(path)
        self.is_checkpoint = is_checkpoint(self.path)
        if self.is_checkpoint:
            self._load_checkpoint(threads)
        else:
            from ..runtime import Classifier

            clf = Classifier.load(self.path, threads=threads)
            self.labels, self.encoder, self.backend = clf.labels, clf.encoder, clf.backend
            self.task = task_of(clf.manifest)
            self.long_text = clf.manifest.long_text  # real texts are read as the artifact reads them
            self.vocab_size = clf.encoder.tokenizer.get_vocab_size()
            self.description = f"{clf.manifest.backend} {clf.manifest.precision}"
            self.model_files = [self.path / name for name in clf.manifest.model_files]

    def _load_checkpoint(self, threads: int) -> None:
        from ..core.errors import require
        from ..modeling.checkpoint import read_checkpoint_meta
        from ..runtime.tokenization import TextEncoder

        torch = require("torch", "train")
        from ..modeling.models import TorchBackend, load_checkpoint_model

        torch.set_num_threads(threads)
        meta = read_checkpoint_meta(self.path)
        model = load_checkpoint_model(self.path)
        self.labels, self.backend, self.task = meta.labels, TorchBackend(model), task_of(meta)
        self.encoder = TextEncoder.from_file(self.path / TOKENIZER, meta.max_length)
        self.long_text = LongText(meta.trained_long_text)  # as its export reads texts by default
        self.vocab_size = model.config.vocab_size
        self.description = "torch fp32 (eager)"
        self.model_files = sorted(self.path.glob("*.safetensors"))

    def logits(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """(N, K) per text; a text longer than the model is truncated or read in windows, as the variant reads it."""
        from ..runtime.model import batched_logits
        from ..runtime.windows import text_logits

        if self.long_text.policy == "truncate":
            ids, types = self.encoder.encode(texts)
            return batched_logits(self.backend, self.encoder, ids, types, batch_size, len(self.labels))
        windows = self.encoder.encode_windows(texts, None, self.long_text)
        rows = batched_logits(self.backend, self.encoder, windows.ids, windows.type_ids, batch_size, len(self.labels))
        return text_logits(rows, windows, self.long_text.aggregate)


def run_bench(
    artifacts: Sequence[Path],
    config: BenchConfig,
    *,
    reference: Path | None = None,
    data: TextDataset | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure every variant side by side. Returns the full report (what report.json holds)."""
    threads = config.threads or usable_cpu_count()
    names = _unique_names([reference] if reference else [], artifacts)
    variants = [_Variant(name, path, threads) for name, path in names]
    label_sets = {(v.task.name, tuple(v.labels)) for v in variants}
    if len(label_sets) > 1:
        raise InputError(
            f"The artifacts differ in task or labels {sorted(label_sets)}; benchmark models of one task together."
        )
    report: dict[str, Any] = {
        "machine": fingerprint(threads),
        "config": {**asdict(config), "threads": threads},
        "variants": {},
    }
    for v in variants:
        report["variants"][v.name] = {
            "path": str(v.path),
            "kind": v.description,
            "model_size_mb": model_size_mb(v.model_files),
        }

    jobs = [("shape", shape) for shape in config.shapes] + ([("real", None)] if data is not None else [])
    bar = progress_bar(total=len(jobs) * config.rounds, desc="bench", unit="round", disable=not progress)
    report["latency"] = {}
    for kind, shape in jobs:
        if kind == "shape":
            batch, tokens = shape
            key = f"{batch}x{tokens}"
            runners = {v.name: _shape_runner(v, batch, tokens) for v in variants}
        else:
            key, batch = "real-text", config.real_text_batch
            runners = {v.name: _real_text_runner(v, data.texts, batch) for v in variants}
        bar.set_postfix(shape=key)
        samples = measure_interleaved(
            runners, rounds=config.rounds, seconds_per_round=config.seconds_per_round, on_round=lambda _: bar.update(1)
        )
        report["latency"][key] = {
            name: as_dict(summarize([t for r in rounds for t in r], batch, rounds)) for name, rounds in samples.items()
        }
    bar.close()

    if config.cold_start:
        for v in variants:
            if not v.is_checkpoint:
                report["variants"][v.name]["cold_start"] = cold_start(v.path, threads)

    if data is not None:
        logits = {v.name: v.logits(data.texts) for v in variants}
        reference_name = variants[0].name
        others = {name: value for name, value in logits.items() if name != reference_name}
        task = variants[0].task  # the reference's (a multi-label model's thresholds included)
        drifts, reference_metrics = accuracy_drift(task, logits[reference_name], others, data)
        report["accuracy"] = {
            "data": data.source,
            "reference": reference_name,
            "reference_metrics": reference_metrics,
            "drift": drifts,
        }
        report["flips"] = {
            name: flipped_examples(task, data, logits[reference_name], value) for name, value in others.items()
        }
    return report


def _shape_runner(variant: _Variant, batch: int, tokens: int) -> Callable[[], object]:
    feed = synthetic_batch(batch, tokens, variant.vocab_size)
    return lambda: variant.backend.run(*feed)


def _real_text_runner(variant: _Variant, texts: list[str], batch: int) -> Callable[[], object]:
    """Each call tokenizes and classifies the next `batch` texts of the dataset, cycling."""
    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    calls = iter(range(1 << 62))
    return lambda: variant.logits(chunks[next(calls) % len(chunks)], batch)


def _unique_names(reference: list[Path], artifacts: Sequence[Path]) -> list[tuple[str, Path]]:
    names, seen = [], set()
    for path in [*reference, *artifacts]:
        base = Path(path).name or str(path)
        name, n = base, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        names.append((name, Path(path)))
    return names
