"""The training checkpoint directory, the contract between `train` and `export`/`bench`: a Hugging Face model
plus `edgebert_checkpoint.json` (labels, max_length, task, pooling, dev metrics). Torch-free."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.artifact import HF_CONFIG, SEQUENCE, TASKS, TOKENIZER
from ..core.errors import ArtifactError

CHECKPOINT_META = "edgebert_checkpoint.json"
ADAPT_META = "edgebert_adapt.json"  # an encoder from `edgebert adapt`: fine-tune it before export


@dataclass
class CheckpointMeta:
    labels: list[str]
    max_length: int
    base_model: str
    train_config: dict[str, Any]
    best_epoch: int
    dev_metrics: dict[str, Any] | None
    task: str = SEQUENCE  # one of core.artifact.TASKS
    pooling: str = "cls"  # "cls" | "mean" (sequence task)
    pretrained: dict[str, Any] | None = None  # the encoder's source (modeling/pretrained.provenance)


def read_checkpoint_meta(path: Path) -> CheckpointMeta:
    path = Path(path)
    meta = path / CHECKPOINT_META
    if not path.is_dir():
        raise ArtifactError(f"Checkpoint not found: {path}. Create one with `edgebert train`.")
    if not meta.is_file() and (path / ADAPT_META).is_file():
        raise ArtifactError(
            f"{path} is an adapted encoder from `edgebert adapt`, not a classifier: fine-tune it first with "
            f"`edgebert train --model {path} ...`, then export that checkpoint."
        )
    if not meta.is_file():
        raise ArtifactError(
            f"{path} is not an edgebert checkpoint ({CHECKPOINT_META} is missing). Train it with `edgebert train`."
        )
    for required in (HF_CONFIG, TOKENIZER):
        if not (path / required).is_file():
            raise ArtifactError(f"Checkpoint {path} is incomplete: {required} is missing. Re-run `edgebert train`.")
    try:
        result = CheckpointMeta(**json.loads(meta.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{meta} is corrupt ({exc}). Re-run `edgebert train`.") from exc
    if result.task not in TASKS:
        raise ArtifactError(f"{meta}: task {result.task!r} is not one of {list(TASKS)}. Re-run `edgebert train`.")
    return result


def is_checkpoint(path: Path) -> bool:
    return (Path(path) / CHECKPOINT_META).is_file()


def encoder_layers(path: Path) -> int | None:
    """The encoder depth in a checkpoint's config.json, or None when it cannot be read (a load will say why)."""
    try:
        layers = json.loads((Path(path) / HF_CONFIG).read_text(encoding="utf-8")).get("num_hidden_layers")
    except (OSError, ValueError, AttributeError):
        return None
    return layers if isinstance(layers, int) and not isinstance(layers, bool) else None
