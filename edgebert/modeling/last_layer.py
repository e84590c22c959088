"""A lighter last encoder layer for [CLS]-pooled sequence classifiers.

With [CLS] pooling only position 0 of the last layer's output is read. That layer still needs keys and values
for every token (position 0 attends to all of them), but its query, attention output, feed-forward and layer
norms are needed for position 0 alone. Per token a BERT layer costs about 12·H² multiply-adds (Q, K, V, O: 4·H²;
feed-forward: 8·H²); keeping only K and V for T-1 of the T tokens saves ~10/12 of the last layer, i.e. about
1/L of the encoder at long lengths. The lower layers are Hugging Face's own modules, so ONNX Runtime's attention
fusion still matches them; the light layer is plain MatMul/Softmax ops (and is quantized like any MatMul).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn

from ..core.errors import InputError


class ClsOnlyLastLayer(nn.Module):
    """Wraps a BertForSequenceClassification: same logits, last layer computed for position 0 only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        bert = getattr(model, "bert", None)
        if bert is None or getattr(bert, "pooler", None) is None or not hasattr(model, "classifier"):
            raise InputError(
                "--light-last-layer applies to [CLS]-pooled sequence classifiers (BertForSequenceClassification); "
                "this checkpoint is not one. Drop the flag."
            )
        if getattr(model.config, "position_embedding_type", "absolute") != "absolute":
            raise InputError("--light-last-layer supports absolute position embeddings only; drop the flag.")
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids) -> SimpleNamespace:
        bert = self.model.bert
        hidden = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, T, H)
        # (B, 1, 1, T): 0 for tokens, a large negative for padding; built as BertModel builds it for eager attention
        mask = bert.get_extended_attention_mask(attention_mask, input_ids.shape)
        *lower, last = bert.encoder.layer
        for layer in lower:
            hidden = layer(hidden, attention_mask=mask)[0]
        cls = cls_only_layer(last, hidden, mask)  # (B, 1, H)
        pooled = bert.pooler(cls)  # the pooler reads position 0: (B, H)
        return SimpleNamespace(logits=self.model.classifier(self.model.dropout(pooled)))


def cls_only_layer(layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One BertLayer evaluated for position 0 only. hidden: (B, T, H), mask: (B, 1, 1, T) -> (B, 1, H)."""
    attention = layer.attention.self
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    batch, width = hidden.shape[0], hidden.shape[2]

    def split(x: torch.Tensor) -> torch.Tensor:  # (B, t, H) -> (B, heads, t, head_size)
        return x.reshape(batch, -1, heads, head_size).transpose(1, 2)

    first = hidden[:, :1]  # (B, 1, H)
    query = split(attention.query(first))  # (B, heads, 1, d)
    keys, values = split(attention.key(hidden)), split(attention.value(hidden))  # (B, heads, T, d)
    scores = query @ keys.transpose(-1, -2) / math.sqrt(head_size) + mask  # (B, heads, 1, T)
    context = (scores.softmax(-1) @ values).transpose(1, 2).reshape(batch, 1, width)  # (B, 1, H)
    attended = layer.attention.output(context, first)  # dense, dropout, LayerNorm(context + first)
    return layer.output(layer.intermediate(attended), attended)  # feed-forward, LayerNorm(ff + attended)
