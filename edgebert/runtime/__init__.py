"""The torch-free runtime: what apps embed. Imports numpy, tokenizers and one inference engine only."""

from .classifier import Classifier, Prediction, softmax
from .tokenization import TextEncoder

__all__ = ["Classifier", "Prediction", "TextEncoder", "softmax"]
