"""Knowledge distillation: a shallower student that learns a fine-tuned teacher's outputs (`edgebert distill`).

The student starts as the teacher itself with only `layers` of its encoder layers kept, evenly spaced and ending on
the last one (6 -> 3 keeps 2, 4, 6; 6 -> 4 keeps 2, 3, 4, 6), so it begins close to the teacher rather than from
scratch (DistilBERT's every-other-layer initialisation). It keeps the teacher's tokenizer, max_length, pooling and
labels, and trains with the usual loop (train/loop.py) on the task's distillation loss (tasks/base.py):

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross_entropy(labels)

(Hinton et al.'s soft targets; T^2 keeps the soft term's gradient scale independent of T); a multi-label task uses
each label's sigmoid(teacher / T) as a soft binary target instead. For token tasks both terms skip positions without
a label (IGNORE). Rows from `--unlabelled` texts (target UNLABELLED) have only the soft term: the teacher's answer
is all the student learns from them. With `hidden_weight` > 0 the loss also pulls each student layer's output
towards the output of the teacher layer it was copied from (mean squared error over real tokens; the intermediate-
layer term of TinyBERT / DistilBERT's cosine loss), which keeps the thinned stack close to the teacher's
representations. The student is an ordinary checkpoint: `edgebert export` takes it.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..core.errors import InputError


def kept_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Evenly spaced teacher layer indices, ending on the last layer."""
    if not 1 <= student_layers < teacher_layers:
        raise InputError(
            f"--layers must be between 1 and {teacher_layers - 1} (the teacher has {teacher_layers} layers), "
            f"got {student_layers}."
        )
    return sorted({round((k + 1) * teacher_layers / student_layers) - 1 for k in range(student_layers)})


def student_from_teacher(teacher: nn.Module, student_layers: int) -> tuple[nn.Module, list[int]]:
    """A copy of `teacher` with only the kept encoder layers (their weights copied). Returns (student, kept)."""
    student = copy.deepcopy(teacher)
    name, layers = _encoder_layers(student)
    keep = kept_layers(len(layers), student_layers)
    parent = student.get_submodule(name.rpartition(".")[0]) if "." in name else student
    setattr(parent, name.rpartition(".")[2], nn.ModuleList([layers[i] for i in keep]))
    for module in student.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "num_hidden_layers"):
            config.num_hidden_layers = len(keep)
    return student, keep


def ensemble_targets(artifacts: tuple[str, ...], labels: list[str], texts: list[str], pairs, say) -> np.ndarray:
    """(N, K) float32: the mean over the ensemble's artifacts of log softmax(logits) on each training text, columns in
    `labels` order. Each member runs in the torch-free runtime with its own tokenizer, so members may be different
    encoders (e5 and m3e); the geometric mean of their distributions is the target the student learns."""
    from ..runtime import Classifier

    members = []
    for path in artifacts:
        model = Classifier.load(path)
        if sorted(model.labels) != sorted(labels):
            raise InputError(f"--ensemble {path} answers {model.labels}, not this data's labels {labels}.")
        licence = ((model.manifest.source.pretrained or {}) if model.manifest.source else {}).get("licence", "unknown")
        say(
            f"ensemble: {path} labels {len(texts)} training texts (its encoder's licence: {licence}; a model trained "
            "on its answers derives from it)"
        )
        logits = model.predict_logits(texts, pairs)[:, [model.labels.index(name) for name in labels]]
        shifted = logits - logits.max(axis=1, keepdims=True)
        members.append(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))  # log softmax
    return np.mean(members, axis=0).astype(np.float32)


def hidden_state_loss(
    student_hidden: tuple[torch.Tensor, ...],  # L_s + 1 tensors (B, T, H): embeddings, then each student layer
    teacher_hidden: tuple[torch.Tensor, ...],  # L_t + 1 tensors (B, T, H)
    kept: list[int],  # teacher layer index of each student layer
    attention_mask: torch.Tensor,  # (B, T), 1 for real tokens
) -> torch.Tensor:
    """Mean squared error between student layer i and teacher layer kept[i], averaged over real tokens and layers."""
    mask = attention_mask.unsqueeze(-1).to(student_hidden[-1].dtype)  # (B, T, 1): padding is not compared
    per_layer = []
    for i, t in enumerate(kept):
        error = (student_hidden[i + 1].float() - teacher_hidden[t + 1].float()) ** 2 * mask  # (B, T, H)
        per_layer.append(error.sum() / (mask.sum() * error.shape[-1]).clamp(min=1.0))
    return torch.stack(per_layer).mean()


def _encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The BERT-family encoder's layer list, whatever head wraps it (…encoder.layer)."""
    for name, module in model.named_modules():
        if name.endswith("encoder.layer") and isinstance(module, nn.ModuleList):
            return name, module
    raise InputError("The teacher has no BERT-style encoder.layer list; distillation supports BERT-family encoders.")
