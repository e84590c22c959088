"""edgebert: fine-tune a BERT classifier, export it to a verified INT8 artifact, run it on a CPU without torch."""

__version__ = "0.1.0"

__all__ = ["Classifier", "Entity", "Prediction", "TokenClassifier", "WordLabel", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import edgebert` stays cheap and the CLI can start without loading onnxruntime.
    if name in ("Classifier", "Entity", "Prediction", "TokenClassifier", "WordLabel"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'edgebert' has no attribute {name!r}")
