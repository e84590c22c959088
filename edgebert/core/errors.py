"""Every error edgebert raises on purpose. The CLI turns these into one-line messages and exit codes.

Each message says what is wrong and what to do next.
"""

from __future__ import annotations


class EdgebertError(Exception):
    """Base class: a user-facing problem with a message that names the fix."""

    exit_code = 2


class InputError(EdgebertError):
    """A file, column, label or option the user gave is missing or malformed."""


class ArtifactExistsError(EdgebertError):
    """The output path already holds something and --force was not given."""


class ArtifactError(EdgebertError):
    """An artifact bundle or checkpoint is missing, corrupt or mismatched."""


class ParityError(EdgebertError):
    """The exported model does not reproduce the reference model's outputs."""

    def __init__(self, message: str, *, max_abs_diff: float, atol: float, agreement: float) -> None:
        super().__init__(message)
        self.max_abs_diff = max_abs_diff
        self.atol = atol
        self.agreement = agreement


class FusionError(EdgebertError):
    """Graph optimization did not fuse what it must (e.g. attention on every layer)."""


class AccuracyBudgetError(EdgebertError):
    """--max-drop could not be met even with every quantized layer returned to fp32."""


class TrainingInterrupted(EdgebertError):
    """Ctrl-C during training: a resumable state was saved."""

    exit_code = 130


class WorkerDiedError(EdgebertError):
    """A worker process was killed from outside; finished work is kept for a resume."""

    exit_code = 3


class MissingDependencyError(EdgebertError):
    """An optional dependency for this stage is not installed."""


def require(module: str, extra: str | None = None):
    """Import an optional module, or raise an error naming what to install.

    extra: the pyproject extra that provides it (a test checks every call against pyproject.toml);
    None for a base dependency (the runtime's own), which only a broken install lacks.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        install = f"pip install 'edgebert[{extra}]'" if extra else "pip install --force-reinstall edgebert"
        raise MissingDependencyError(
            f"'{module}' is not installed; this step needs it. Install it with: {install}"
        ) from exc
