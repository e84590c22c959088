"""The torch-free runtime: what apps embed. Imports numpy, tokenizers and one inference engine only.

Front doors: `Classifier` (sequence artifacts) and `TokenClassifier` (token artifacts).
"""

from .classifier import Classifier, Prediction
from .model import softmax
from .token_classifier import Entity, TokenClassifier, WordLabel
from .tokenization import TextEncoder

__all__ = ["Classifier", "Entity", "Prediction", "TextEncoder", "TokenClassifier", "WordLabel", "softmax"]
