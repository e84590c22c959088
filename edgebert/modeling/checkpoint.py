"""The training checkpoint directory, the contract between `train` and `export`/`bench`: a Hugging Face model
plus `edgebert_checkpoint.json` (labels, max_length, task, pooling, dev metrics). Torch-free.

A Hugging Face classifier directory that edgebert did not train (saved by `transformers.Trainer` or
`save_pretrained`: config.json with `id2label` and a `...ForSequenceClassification` / `...ForTokenClassification`
architecture, tokenizer.json, safetensors or bin weights) is read as a checkpoint too: its meta is derived from
config.json and tokenizer_config.json (`hf_directory_meta`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.artifact import HF_CONFIG, LONG_TEXT_POLICIES, MULTI_LABEL, SEQUENCE, TASKS, TOKEN, TOKENIZER
from ..core.errors import ArtifactError
from ..tasks import task_class
from .input_directory import check_contained, check_input_directory

CHECKPOINT_META = "edgebert_checkpoint.json"
HF_HEADS = {"ForSequenceClassification": SEQUENCE, "ForTokenClassification": TOKEN}  # architecture suffix -> task
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
MAX_POSITIONS = 512  # BERT-family position limit (RoBERTa's 514 rows include its padding offset)
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
    thresholds: list[float] | None = None  # multi_label: per-label decision thresholds, chosen on dev

    @property
    def trained_long_text(self) -> str:
        """How training read texts longer than max_length ("chunk": every window), so exports read them the same."""
        trained = self.train_config.get("long_text") if isinstance(self.train_config, dict) else None
        return trained if trained in LONG_TEXT_POLICIES else "truncate"


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
    if not meta.is_file() and (path / HF_CONFIG).is_file():
        return hf_directory_meta(path)
    if not meta.is_file():
        raise ArtifactError(
            f"{path} is neither an edgebert checkpoint ({CHECKPOINT_META}) nor a Hugging Face model directory "
            f"({HF_CONFIG}). Train one with `edgebert train`, or point at the directory `save_pretrained` wrote."
        )
    for required in (HF_CONFIG, TOKENIZER):
        if not (path / required).is_file():
            raise ArtifactError(f"Checkpoint {path} is incomplete: {required} is missing. Re-run `edgebert train`.")
    check_contained(path)
    try:
        result = CheckpointMeta(**json.loads(meta.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{meta} is corrupt ({exc}). Re-run `edgebert train`.") from exc
    if result.task not in TASKS:
        raise ArtifactError(f"{meta}: task {result.task!r} is not one of {list(TASKS)}. Re-run `edgebert train`.")
    check_input_directory(path, _json_object(path / HF_CONFIG), result.labels)
    return result


def hf_directory_meta(path: Path) -> CheckpointMeta:
    """The meta of a Hugging Face classifier directory, derived from its own files; one clear error naming what is
    missing when it is not one."""
    check_contained(path)
    config = _json_object(path / HF_CONFIG)
    architectures = config.get("architectures") or []
    task = next((t for a in architectures for suffix, t in HF_HEADS.items() if str(a).endswith(suffix)), None)
    if task is None:
        raise ArtifactError(
            f"{path} is a Hugging Face model directory, but its architectures {architectures} have no "
            "sequence- or token-classification head. Export a model fine-tuned with AutoModelForSequenceClassification "
            "or AutoModelForTokenClassification (its config.json lists e.g. BertForSequenceClassification)."
        )
    labels = _labels(config, path)
    task_class(task).check_labels(labels, path / HF_CONFIG)
    thresholds = None
    if task == SEQUENCE and config.get("problem_type") == "multi_label_classification":
        task, thresholds = MULTI_LABEL, [0.5] * len(labels)  # sigmoid at 0.5, as transformers' pipeline decides
    if not (path / TOKENIZER).is_file():
        raise ArtifactError(
            f"{path} has no {TOKENIZER}: save the fast tokenizer beside the model "
            "(AutoTokenizer.from_pretrained(...).save_pretrained(DIR) writes it)."
        )
    if not any((path / name).is_file() for name in HF_WEIGHTS):
        raise ArtifactError(f"{path} has no weights ({' or '.join(HF_WEIGHTS)}); save the model with save_pretrained.")
    check_input_directory(path, config, labels)
    return CheckpointMeta(
        labels=labels,
        max_length=_max_length(path, config),
        base_model=f"{config.get('model_type', '?')} from {path}",
        train_config={},
        best_epoch=0,
        dev_metrics=None,
        task=task,
        pooling="cls",
        pretrained={"name": config.get("_name_or_path") or str(path), "source": "Hugging Face directory"},
        thresholds=thresholds,
    )


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ArtifactError(f"{path} cannot be read as JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} is not a JSON object.")
    return data


def _labels(config: dict, path: Path) -> list[str]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or len(id2label) < 2:
        raise ArtifactError(f"{path / HF_CONFIG} has no id2label with at least 2 labels; set config.id2label.")
    try:
        labels = [id2label[str(i)] for i in range(len(id2label))]
    except KeyError:
        raise ArtifactError(f"{path / HF_CONFIG}: id2label keys must be 0..{len(id2label) - 1}.") from None
    if odd := [name for name in labels if not isinstance(name, str) or not name.strip()]:
        raise ArtifactError(
            f"{path / HF_CONFIG}: id2label names must be non-empty strings; {odd[0]!r:.40} is not. Name each label."
        )
    if len(set(labels)) != len(labels):
        raise ArtifactError(f"{path / HF_CONFIG}: id2label repeats a label name ({labels}).")
    return labels


def _max_length(path: Path, config: dict) -> int:
    """The tokenizer's model_max_length when it is a real number, else the position limit, at most 512."""
    positions = int(config.get("max_position_embeddings") or MAX_POSITIONS)
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # position ids start after the padding index
    limit = min(positions, MAX_POSITIONS)
    tokenizer_config = path / "tokenizer_config.json"
    if tokenizer_config.is_file():
        declared = _json_object(tokenizer_config).get("model_max_length")
        if isinstance(declared, int) and 3 <= declared < limit:
            return declared
    return limit


def is_checkpoint(path: Path) -> bool:
    return (Path(path) / CHECKPOINT_META).is_file()


def encoder_layers(path: Path) -> int | None:
    """The encoder depth in a checkpoint's config.json, or None when it cannot be read (a load will say why)."""
    try:
        layers = json.loads((Path(path) / HF_CONFIG).read_text(encoding="utf-8")).get("num_hidden_layers")
    except (OSError, ValueError, AttributeError):
        return None
    return layers if isinstance(layers, int) and not isinstance(layers, bool) else None
