"""Inference engines behind the Classifier: ONNX Runtime and OpenVINO, each imported only when used."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.artifact import BACKENDS
from ..core.errors import ArtifactError, require


class Backend(Protocol):
    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        """(B, T) int64 inputs -> float32 logits: (B, num_labels) for a sequence model, (B, T, num_labels) for a
        token model."""
        ...


@dataclass(frozen=True)
class ModelBytes:
    """A model read into memory once and checksummed there (core.artifact.read_verified): every session opens
    from these bytes, never again from a path whose file may have been replaced since."""

    where: Path  # for messages
    files: tuple[bytes, ...]  # (model.onnx,) or (model.xml, model.bin)


ModelSource = Path | ModelBytes


class OnnxRuntimeBackend:
    def __init__(self, model_path: ModelSource, threads: int, spinning: bool = False) -> None:
        """spinning: let ORT's worker threads busy-wait *between* calls too. Off by default: they spin only while a
        call runs (between its ops, where waking a sleeping thread costs more than the op) and stop when it
        returns (session.force_spinning_stop). Measured with the demo's INT8 artifact on Zen 3, 2 threads, one
        call every 200 ms: spinning between calls burned 5x the CPU of the calls themselves; forbidding spinning
        altogether made 128-token calls 1.6x slower. benchmarks/results/idle-*.json has the numbers."""
        ort = require("onnxruntime")  # a base dependency
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.force_spinning_stop", "0" if spinning else "1")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = model_path.files[0] if isinstance(model_path, ModelBytes) else str(model_path)
        where = model_path.where if isinstance(model_path, ModelBytes) else model_path
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise ArtifactError(f"ONNX Runtime cannot load {where}: {exc}. Re-export the artifact.") from exc
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.version = ort.__version__

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {name: value for name, value in feed.items() if name in self.input_names}
        return self.session.run(None, feed)[0]


class OpenVinoBackend:
    """Runs an OpenVINO IR with the `openvino` package alone (no optimum-intel, no torch)."""

    def __init__(self, model_path: ModelSource, threads: int, precision: str = "f32", mode: str = "latency") -> None:
        ov = require("openvino", "openvino")
        core = ov.Core()
        config = {
            # This CPU family defaults to bf16 inference, which changes accuracy: pin it explicitly.
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": {"latency": "LATENCY", "throughput": "THROUGHPUT"}[mode],
            "INFERENCE_NUM_THREADS": threads,
        }
        where = model_path.where if isinstance(model_path, ModelBytes) else model_path
        try:
            if isinstance(model_path, ModelBytes):  # the IR's XML text and its weights, from memory
                xml, weights = model_path.files
                model = core.read_model(model=xml, weights=ov.Tensor(np.frombuffer(weights, dtype=np.uint8)))
            else:
                model = core.read_model(str(model_path))
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ArtifactError(f"OpenVINO cannot load {where}: {exc}. Re-export the artifact.") from exc
        self.input_names = {port.any_name for port in self.compiled.inputs}
        self.version = ov.__version__
        self._idle_requests: queue.SimpleQueue = queue.SimpleQueue()

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {name: value for name, value in feed.items() if name in self.input_names}
        # Each caller takes an idle infer request (or makes one), so concurrent callers never share a request's
        # buffers; reusing them saves creating one per call (5% of a short text's time at batch 1, zen4).
        try:
            request = self._idle_requests.get_nowait()
        except queue.Empty:
            request = self.compiled.create_infer_request()
        try:
            result = request.infer(feed)
            return np.array(result[self.compiled.outputs[0]])  # a copy: the request's buffer is reused
        finally:
            self._idle_requests.put(request)


class RowByRow:
    """Runs each row alone, without its padding, so its result cannot depend on batch-mates.

    Dynamic INT8 computes one activation scale over the whole (B, T, H) input of each MatMul: on bbc_news dev,
    2 of 331 labels changed between one list call and one-by-one calls. Alone and unpadded, a text always meets
    the same scales (per-row activation scales inside the graph were tried: 1.2-1.6x slower).

    A call with several rows runs them side by side on `workers` threads, each through `parallel`, a one-thread
    session of the same graph (ORT releases the GIL): small single-row matrices keep one core busy better than
    they split across two. Its logits equal the multi-thread session's bit for bit (MLAS splits work over
    rows and columns, never over a sum; tests check it). Measured on Zen 3, 2 threads, 160 bbc_news texts:
    rows one after another on the 2-thread session 51.8 texts/s (6 layers) / 132 (3-layer light), side by side
    62.3 / 163 (1.20x / 1.23x). A lone row uses `inner`, the multi-thread session: lower latency.
    """

    def __init__(self, inner: Backend, open_parallel: Callable[[], Backend] | None = None, workers: int = 1) -> None:
        """open_parallel: opens the one-thread session, on the first call with several rows (so an app that
        predicts one text at a time never pays its ~95 ms and ~30 MB), from the verified bytes kept for it
        (ModelBytes: the model's size in memory), never from the file, which may have changed since."""
        self.inner, self.workers = inner, workers
        self.version = getattr(inner, "version", "")
        self._open_parallel = open_parallel
        self.parallel: Backend | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def side_by_side(self) -> bool:
        return self._open_parallel is not None

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        lengths = attention_mask.sum(axis=1)  # edgebert pads on the right
        feeds = []
        for i, n in enumerate(lengths):
            n = max(int(n), 1)
            feeds.append((input_ids[i : i + 1, :n], attention_mask[i : i + 1, :n], token_type_ids[i : i + 1, :n]))
        if self.side_by_side and len(feeds) > 1:
            pool, parallel = self._side_by_side()
            rows = list(pool.map(lambda feed: parallel.run(*feed), feeds))
        else:
            rows = [self.inner.run(*feed) for feed in feeds]
        if rows[0].ndim == 2:  # (1, K) per row -> (B, K)
            return np.concatenate(rows)
        out = np.zeros((len(rows), input_ids.shape[1], rows[0].shape[-1]), dtype=rows[0].dtype)  # (B, T, K)
        for i, row in enumerate(rows):
            out[i, : row.shape[1]] = row[0]
        return out

    def _side_by_side(self) -> tuple[ThreadPoolExecutor, Backend]:
        with self._lock:
            if self._pool is None:
                self.parallel = self._open_parallel()
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edgebert-row")
            return self._pool, self.parallel


def open_backend(
    backend: str, model_path: ModelSource, threads: int, *, row_by_row: bool = False, **options
) -> Backend:
    """row_by_row: run each row alone (see RowByRow); core.artifact.quantizes_per_call says when it is needed."""
    engine = _open(backend, model_path, threads, **options)
    if not row_by_row:
        return engine
    if backend == "onnxruntime" and threads > 1:  # rows side by side, one thread each (see RowByRow)
        return RowByRow(engine, lambda: OnnxRuntimeBackend(model_path, 1), workers=threads)
    return RowByRow(engine)


def _open(backend: str, model_path: ModelSource, threads: int, spinning: bool = False, **options) -> Backend:
    if backend == "onnxruntime":
        return OnnxRuntimeBackend(model_path, threads, spinning=spinning)
    if backend == "openvino":  # OpenVINO's TBB workers park themselves when idle: no spinning switch to set
        return OpenVinoBackend(model_path, threads, **options)
    raise ArtifactError(f"Unknown backend '{backend}' in the manifest; this edgebert knows {list(BACKENDS)}.")
