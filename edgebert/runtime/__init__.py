"""The torch-free runtime: what apps embed. Imports numpy, tokenizers and one inference engine only.

Front doors: `Classifier` (sequence artifacts) and `TokenClassifier` (token artifacts).
"""

from pathlib import Path

from ..core.fleet import artifact_task
from .classifier import Classifier, LabelScore, Prediction
from .model import ArtifactModel, softmax
from .token_classifier import Entity, TokenClassifier, WordLabel
from .tokenization import TextEncoder

FRONT_DOORS: dict[str, type[ArtifactModel]] = {task: cls for cls in (Classifier, TokenClassifier) for task in cls.TASKS}


def front_door(path: str | Path) -> type[ArtifactModel]:
    """The class that loads the artifact (or fleet bundle) at `path`, by the task its manifest declares."""
    return FRONT_DOORS[artifact_task(Path(path))]


__all__ = [
    "FRONT_DOORS",
    "Classifier",
    "Entity",
    "LabelScore",
    "Prediction",
    "TextEncoder",
    "TokenClassifier",
    "WordLabel",
    "front_door",
    "softmax",
]
