"""Deprecated path: the errors moved to `edgebert.core.errors` and are importable from `edgebert` itself.

`from edgebert.errors import ArtifactError` keeps working, with a DeprecationWarning naming the new import.
"""

import warnings

from .core.errors import (
    AccuracyBudgetError,
    ArtifactError,
    ArtifactExistsError,
    EdgebertError,
    FusionError,
    InputError,
    MissingDependencyError,
    ParityError,
    TrainingInterrupted,
)

warnings.warn(
    "edgebert.errors is deprecated: import the errors from edgebert (from edgebert import ArtifactError).",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "AccuracyBudgetError",
    "ArtifactError",
    "ArtifactExistsError",
    "EdgebertError",
    "FusionError",
    "InputError",
    "MissingDependencyError",
    "ParityError",
    "TrainingInterrupted",
]
