"""edgebert: fine-tune a BERT classifier, export it to a verified INT8 artifact, run it on a CPU without torch."""

__version__ = "0.1.0"

from .core.errors import ArtifactError, EdgebertError, InputError  # light: no dependencies

RUNTIME_NAMES = ("Classifier", "Entity", "LabelScore", "Prediction", "TokenClassifier", "WordLabel")
__all__ = [*RUNTIME_NAMES, "ArtifactError", "EdgebertError", "InputError", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import edgebert` stays cheap and the CLI can start without loading onnxruntime.
    if name in RUNTIME_NAMES:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'edgebert' has no attribute {name!r}")
