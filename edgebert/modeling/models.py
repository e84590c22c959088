"""The torch models edgebert trains and exports: an encoder plus a head, per task and pooling; and a torch model
behind the runtime's Backend interface (for evaluation during training, parity at export, and bench references).

- sequence + cls:  Hugging Face's BertForSequenceClassification ([CLS] -> pooler dense+tanh -> dropout -> linear)
- sequence + mean: `MeanPoolClassifier` (mean of non-pad token vectors -> dropout -> linear); sentence-transformers
                   encoders such as all-MiniLM-L6-v2 were pre-trained with exactly this pooling
- token:           Hugging Face's BertForTokenClassification (every token vector -> dropout -> linear)

Every model returns an object with `.logits`: (B, num_labels) for sequences, (B, T, num_labels) for tokens.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from ..core.errors import ArtifactError
from ..tasks import task_class

HEAD_FILE = "mean_pool_head.safetensors"


class MeanPoolClassifier(nn.Module):
    """Encoder -> mean over real tokens -> dropout -> linear. Exports to plain ONNX ops (Mul, ReduceSum, Div)."""

    def __init__(self, encoder: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # (num_labels, id2label, ... live here, as for HF models)
        self.dropout = nn.Dropout(encoder.config.hidden_dropout_prob)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_labels)
        self.classifier.weight.data.normal_(0.0, encoder.config.initializer_range)
        self.classifier.bias.data.zero_()

    def forward(self, input_ids, attention_mask, token_type_ids, output_hidden_states: bool = False) -> SimpleNamespace:
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=output_hidden_states,
        )
        hidden = out.last_hidden_state  # (B, T, H)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H); clamp: an all-pad row gives 0, not NaN
        return SimpleNamespace(logits=self.classifier(self.dropout(pooled)), hidden_states=out.hidden_states)

    def get_input_embeddings(self) -> nn.Module:  # as Hugging Face models have it (the optimizer asks)
        return self.encoder.get_input_embeddings()

    def save_pretrained(self, out: Path) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(out)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, str(Path(out) / HEAD_FILE))


def new_model(
    model_dir: Path, task: str, pooling: str, labels: list[str], *, attn_implementation: str | None = None
) -> nn.Module:
    """A pretrained encoder with a freshly initialised head for `labels`."""
    import transformers

    label_maps = {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}
    kwargs: dict[str, Any] = {"num_labels": len(labels), **label_maps}
    if task_class(task).hf_problem_type:
        kwargs["problem_type"] = task_class(task).hf_problem_type
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if pooling == "mean":
        encoder = transformers.AutoModel.from_pretrained(model_dir, add_pooling_layer=False, **kwargs)
        return MeanPoolClassifier(encoder, len(labels))
    head = getattr(transformers, task_class(task).hf_auto_class)
    # ignore_mismatched_sizes: allows re-fine-tuning a checkpoint with a different label set
    return head.from_pretrained(model_dir, ignore_mismatched_sizes=True, **kwargs)


def load_trained(checkpoint: Path, task: str, pooling: str, *, attn_implementation: str = "eager") -> nn.Module:
    """A trained checkpoint, in eval mode. Eager attention by default: SDPA exports as one opaque
    pattern that ONNX Runtime's attention fusion cannot match."""
    import transformers

    kwargs = {"attn_implementation": attn_implementation}
    try:
        if pooling == "mean":
            from safetensors.torch import load_file

            head = Path(checkpoint) / HEAD_FILE
            if not head.is_file():
                raise ArtifactError(
                    f"Checkpoint {checkpoint} is incomplete: {HEAD_FILE} is missing. Re-run `edgebert train`."
                )
            encoder = transformers.AutoModel.from_pretrained(checkpoint, add_pooling_layer=False, **kwargs)
            model = MeanPoolClassifier(encoder, encoder.config.num_labels)
            model.classifier.load_state_dict(load_file(str(head)))
        else:
            model = getattr(transformers, task_class(task).hf_auto_class).from_pretrained(checkpoint, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        # read_checkpoint_meta checked what can be checked without torch; whatever transformers still finds wrong
        # is one line, not its traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ArtifactError(
            f"{checkpoint} could not be loaded by transformers ({reason}). Save the model again with save_pretrained."
        ) from None
    return model.eval()


def resize_embeddings(model: nn.Module, vocab_size: int, seed: int) -> int:
    """Grow the word-embedding table to `vocab_size`; new rows ~ N(mean of old rows, initializer_range).

    Returns the number of rows added. Seeded separately so the head's initialisation does not shift.
    """
    if isinstance(model, MeanPoolClassifier):
        model = model.encoder
    embeddings = model.get_input_embeddings()
    old = embeddings.weight.shape[0]
    if vocab_size <= old:
        return 0
    mean = embeddings.weight.data.mean(0)  # (H,)
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    generator = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range
    new_rows = torch.randn(vocab_size - old, mean.shape[0], generator=generator) * std + mean
    model.get_input_embeddings().weight.data[old:] = new_rows
    return vocab_size - old


def onnx_export(model: nn.Module, out: Path, opset: int, *, token_level: bool) -> Path:
    """torch.onnx (TorchScript exporter) with dynamic batch and sequence axes, inputs named like HF's."""
    dummy = torch.ones(2, 8, dtype=torch.long)
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}}
    axes["attention_mask"] = axes["token_type_ids"] = axes["input_ids"]
    axes["logits"] = {0: "batch_size", 1: "sequence_length"} if token_level else {0: "batch_size"}

    class LogitsOnly(nn.Module):  # the exporter needs tensors out, not a namespace
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            LogitsOnly(model).eval(),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return out


class TorchBackend:
    """A torch classifier behind the runtime's Backend interface: (B, T) int64 arrays in, numpy logits out."""

    def __init__(self, model: nn.Module) -> None:
        import inspect

        self.model = model.eval()
        # DistilBERT and some RoBERTa-style heads take no token_type_ids (their ONNX graphs have no such input)
        self.uses_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def run(self, input_ids, attention_mask, token_type_ids):
        inputs = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if self.uses_token_types:
            inputs["token_type_ids"] = torch.from_numpy(token_type_ids)
        with torch.inference_mode():
            out = self.model(**inputs)
        return out.logits.float().numpy()


def load_checkpoint_model(checkpoint: Path) -> nn.Module:
    """A checkpoint's torch model (eager attention, eval mode), whatever its task and pooling."""
    from .checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(checkpoint)
    return load_trained(checkpoint, meta.task, meta.pooling)
