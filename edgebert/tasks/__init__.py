"""What differs between tasks, in one place: sequence classification (one label per text) and token
classification (one BIO tag per word). Stage code (train, export, bench, the CLI) asks the task object how to
read labels, encode data, decode and score logits, measure drift and which runtime class serves it; it never
compares task names. A third task (multi-label, say) is a new class here, not new branches across stages.

Layering: above `data` (datasets, label sets) and `runtime` (engines, front doors), below `modeling`; torch-free.
"""

from __future__ import annotations

from ..core.artifact import SEQUENCE, TOKEN
from ..core.errors import InputError
from ..data.text import LabelSet
from .base import Encoded, Task
from .sequence import SequenceTask
from .token import TokenTask

TASK_CLASSES: dict[str, type[Task]] = {SEQUENCE: SequenceTask, TOKEN: TokenTask}


def task_class(name: str) -> type[Task]:
    try:
        return TASK_CLASSES[name]
    except KeyError:
        raise InputError(f"Unknown task {name!r}: one of {sorted(TASK_CLASSES)}.") from None


def task_for(name: str, labels: LabelSet | list[str] | tuple[str, ...]) -> Task:
    """The task `name` over `labels` (in logit order)."""
    return task_class(name)(labels if isinstance(labels, LabelSet) else LabelSet(tuple(labels)))


__all__ = ["Encoded", "SequenceTask", "TASK_CLASSES", "Task", "TokenTask", "task_class", "task_for"]
