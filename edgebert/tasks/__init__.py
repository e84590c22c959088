"""What differs between tasks, in one place: sequence classification (one label per text) and token
classification (one BIO tag per word). Stage code (train, export, bench, the CLI) asks the task object how to
read labels, encode data, decode and score logits, measure drift and which runtime class serves it; it never
compares task names. Multi-label classification (multilabel.py) is the third: a class here, not branches across
stages.

Layering: above `data` (datasets, label sets) and `runtime` (engines, front doors), below `modeling`; torch-free.
"""

from __future__ import annotations

from ..core.artifact import MULTI_LABEL, SEQUENCE, TOKEN
from ..core.errors import InputError
from ..data.text import LabelSet
from .base import Encoded, Task
from .multilabel import MultiLabelTask
from .sequence import SequenceTask
from .token import TokenTask

TASK_CLASSES: dict[str, type[Task]] = {SEQUENCE: SequenceTask, TOKEN: TokenTask, MULTI_LABEL: MultiLabelTask}


def task_class(name: str) -> type[Task]:
    try:
        return TASK_CLASSES[name]
    except KeyError:
        raise InputError(f"Unknown task {name!r}: one of {sorted(TASK_CLASSES)}.") from None


def task_for(name: str, labels: LabelSet | list[str] | tuple[str, ...]) -> Task:
    """The task `name` over `labels` (in logit order)."""
    return task_class(name)(labels if isinstance(labels, LabelSet) else LabelSet(tuple(labels)))


def task_of(meta) -> Task:
    """The task of a checkpoint (its CheckpointMeta), with what it decided in training (multi-label thresholds)."""
    return task_class(meta.task).from_meta(meta)


__all__ = [
    "Encoded",
    "MultiLabelTask",
    "SequenceTask",
    "TASK_CLASSES",
    "Task",
    "TokenTask",
    "task_class",
    "task_for",
    "task_of",
]
