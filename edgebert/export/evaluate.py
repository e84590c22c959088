"""Scoring the saved model as the runtime will run it: on --eval (what quantization changed against the fp32 graph)
and on --test (held-out data nothing was chosen on, reported only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.artifact import quantizes_per_call
from ..core.cpu import usable_cpu_count
from ..core.measurements import Evaluation
from ..runtime.backends import Backend, open_backend
from ..tasks import Encoded
from .config import ExportConfig

if TYPE_CHECKING:
    from .pipeline import ExportInputs, Graph


def evaluate_saved(
    model_path: Path, graph: Graph, fp32_eval: np.ndarray | None, inputs: ExportInputs, config: ExportConfig, say
) -> Evaluation | None:
    """The saved model's scores on --eval, as the runtime will run it, and what changed against the fp32 graph."""
    if inputs.eval_data is None:
        return None
    say(f"evaluating on {len(inputs.eval_data)} {inputs.task.data_unit} from {inputs.eval_data.source}")
    if inputs.long_text.policy == "truncate":
        return _evaluation(model_path, graph, inputs, config, inputs.eval_data.source, inputs.encoded_eval, fp32_eval)
    return _read_evaluation(model_path, graph, inputs, config, inputs.eval_data)  # the budget's rows were truncated


def evaluate_on_test(
    model_path: Path, graph: Graph, inputs: ExportInputs, config: ExportConfig, say
) -> Evaluation | None:
    """--test: the saved model on held-out data, after every choice was made on --eval; nothing reads it back."""
    if inputs.test_data is None:
        return None
    say(f"reporting on {len(inputs.test_data)} held-out {inputs.task.data_unit} from {inputs.test_data.source}")
    return _read_evaluation(model_path, graph, inputs, config, inputs.test_data)


def _read_evaluation(model_path: Path, graph: Graph, inputs: ExportInputs, config: ExportConfig, data) -> Evaluation:
    """The evaluation of `data` read as the artifact reads texts (inputs.long_text), fp32 graph beside it."""
    task, encoder = inputs.task, inputs.encoder
    encoded = task.encode_read(encoder, data, inputs.long_text)
    fp32 = None
    if config.quantization:
        fp32 = task.text_logits(
            task.model_logits("onnxruntime", graph.path, encoder, encoded.ids, encoded.type_ids), encoded
        )
    return _evaluation(model_path, graph, inputs, config, data.source, encoded, fp32)


def _evaluation(model_path, graph, inputs, config, source: str, encoded: Encoded, fp32_logits) -> Evaluation:
    task = inputs.task
    return task.artifact_evaluation(
        source=source,
        encoded=encoded,
        candidate=lambda: task.text_logits(
            task.logits(saved_engine(model_path, config), inputs.encoder, encoded.ids, encoded.type_ids), encoded
        ),
        fp32_reference=fp32_logits,
        fp32_graph=graph.path if config.quantization else None,
        encoder=inputs.encoder,
        candidate_engine=lambda: saved_engine(model_path, config),
    )


def saved_engine(model_path: Path, config: ExportConfig) -> Backend:
    """The saved model opened as the runtime will run it: one row per call where its INT8 scales are picked per
    call (core.artifact.quantizes_per_call), its float layers in the precision the manifest records."""
    per_call = quantizes_per_call(config.backend, config.quantization)
    return open_backend(config.backend, model_path, usable_cpu_count(), row_by_row=per_call, **config.engine_options)
