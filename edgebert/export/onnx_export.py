"""torch -> ONNX with dynamic batch and sequence axes, and the parity check every later graph must pass."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import ONNX_MODEL
from ..core.errors import ParityError, require

# Texts that exercise the tokenizer's edges; always part of the parity check and the golden sample. The last
# one is longer than any max_length, so the golden sample also pins the truncation length.
PARITY_TEXTS = [
    "The central bank raised interest rates again on Thursday.",
    "",
    "Ünïcödé, emoji 🙂 and a tab\there — still one text.",
    "中文和English混合的句子，含全角标点！123",
    "The central bank raised interest rates again on Thursday. " * 100,
]


def export_onnx(
    model, out_dir: Path, opset: int, *, task, pooling: str = "cls", light_last_layer: bool = False
) -> Path:
    """Export with dynamic batch and sequence axes; returns the model path.

    Hugging Face heads go through optimum's exporter; the mean-pooling head and the light-last-layer wrapper
    (not transformers classes) through torch.onnx with the same input and output names."""
    if light_last_layer:
        from ..modeling.last_layer import ClsOnlyLastLayer
        from ..modeling.models import onnx_export

        return onnx_export(ClsOnlyLastLayer(model), out_dir / ONNX_MODEL, opset, token_level=False)
    if pooling == "mean":  # sequence models only (TrainConfig refuses mean pooling for token tasks)
        from ..modeling.models import onnx_export

        return onnx_export(model, out_dir / ONNX_MODEL, opset, token_level=False)
    require("optimum.exporters.onnx", "export")
    from optimum.exporters.onnx import onnx_export_from_model

    with quiet_exporter():
        onnx_export_from_model(model, output=out_dir, task=task.hf_task, opset=opset, do_validation=False)
    return out_dir / ONNX_MODEL


@contextlib.contextmanager
def quiet_exporter():
    """Silence optimum's messages that do not apply to edgebert's export, each for a stated reason:
    - "Opset 17 is lower than the recommended minimum (18)": optimum's advice for its own SDPA path; edgebert
      exports eager attention at opset 17 because ORT's attention fusion matches that graph, and parity is checked.
    - "Weight deduplication check ... requires accelerate": deduplication matters for tied weights; BERT
      classifiers have none (the exported graph is checked against torch either way).
    """
    loggers = [logging.getLogger(f"optimum.exporters.onnx.{name}") for name in ("base", "convert")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Oo]pset.*")
            warnings.filterwarnings("ignore", message=".*accelerate.*")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def check_parity(reference: np.ndarray, candidate: np.ndarray, atol: float, *, stage: str) -> dict[str, Any]:
    """Max |Δlogit| and argmax agreement; raises ParityError when out of tolerance."""
    max_diff = float(np.max(np.abs(reference - candidate)))
    agreement = float(np.mean(reference.argmax(-1) == candidate.argmax(-1)))
    if not max_diff <= atol or agreement < 1.0:  # `not <=` also catches NaN
        raise ParityError(
            f"{stage} changed the model's outputs: max |Δlogit| {max_diff:.3g} (tolerance {atol:g}), "
            f"argmax agreement {agreement:.1%}. The exported graph is wrong; please report it with the checkpoint's config.json.",
            max_abs_diff=max_diff,
            atol=atol,
            agreement=agreement,
        )
    # n: rows compared (texts for sequence models, tokens of all texts for token models)
    return {"stage": stage, "max_abs_logit_diff": max_diff, "agreement": agreement, "atol": atol, "n": len(reference)}
