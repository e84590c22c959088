"""Optimizer, schedule, precision and seeding: what `train` and `adapt` share. Imports torch only when called."""

from __future__ import annotations

import random

import numpy as np

from ..core.cpu import cpu_info
from .config import AdaptConfig, TrainConfig


def use_bf16(config: TrainConfig | AdaptConfig) -> bool:
    """bf16 autocast only where the CPU computes bf16 natively; elsewhere it is emulated and slower."""
    if config.precision != "auto":
        return config.precision == "bf16"
    return cpu_info().native_bf16


def adamw_with_linear_schedule(torch, model, config: TrainConfig | AdaptConfig, total_steps: int):
    """AdamW with no weight decay on biases and LayerNorm weights; linear warmup, then linear decay to 0.
    The word embeddings get their own learning rate (x embedding_lr_scale): rows added for a new vocabulary start
    random and see few updates each, while the encoder above them is already trained."""
    embeddings = model.get_input_embeddings().weight  # also the MLM decoder's (tied) weight during adapt
    others = [p for p in model.parameters() if p is not embeddings]
    embedding_group = {
        "params": [embeddings],
        "weight_decay": config.weight_decay,
        "lr": config.learning_rate * config.embedding_lr_scale,
    }
    optimizer = torch.optim.AdamW(
        [embedding_group] * embeddings.requires_grad  # --freeze-embeddings: not optimized at all
        + [
            {"params": [p for p in others if p.ndim >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in others if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    warmup_steps = int(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _linear_schedule(step, warmup_steps, total_steps)
    )
    return optimizer, scheduler


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def seed_everything(torch, seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
