"""Fine-tune a BERT-family encoder for text classification with plain torch.

Reads top to bottom: data -> tokenizer -> model -> optimizer -> loop (train, evaluate, keep best) -> save.
The classifier is Hugging Face's sequence-classification head: [CLS] -> pooler dense+tanh -> dropout
-> linear -> softmax, trained with cross-entropy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import atomic_directory, check_writable
from .checkpoint import CHECKPOINT_META
from .config import TrainConfig
from .cpu import usable_cpu_count
from .data import LabelSet, TextDataset, require_labels
from .errors import InputError, require
from .metrics import classification_metrics
from .pretrained import resolve_model
from .runtime.classifier import batched_logits
from .runtime.tokenization import TextEncoder


def train(
    train_data: TextDataset,
    eval_data: TextDataset,
    config: TrainConfig,
    out: Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, keep the checkpoint with the best dev macro-F1, write it to `out`. Returns its metrics."""
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    from tqdm.auto import tqdm

    check_writable(out, force)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(usable_cpu_count())

    # ---- data: label ids from the training set; the dev set must use the same labels
    labels = LabelSet.from_labels(require_labels(train_data, config.label_column))
    y_train = labels.encode(train_data.labels, train_data.source)
    y_eval = labels.encode(require_labels(eval_data, config.label_column), eval_data.source)
    if not eval_data.texts:
        raise InputError(f"Evaluation set {eval_data.source} is empty.")

    # ---- tokenizer: the same TextEncoder the runtime uses, so training and inference ids are identical
    model_dir = resolve_model(config.model)
    tokenizer_file = _tokenizer_json(model_dir)
    encoder = TextEncoder.from_file(tokenizer_file, config.max_length)
    train_ids, train_types = encoder.encode(train_data.texts)
    eval_ids, eval_types = encoder.encode(eval_data.texts)
    truncated = sum(len(ids) >= config.max_length for ids in train_ids)
    _say(
        progress,
        f"{len(train_ids)} train / {len(eval_ids)} dev texts; {truncated} train texts truncated at {config.max_length} tokens",
    )

    # ---- model: pretrained encoder + freshly initialised classification head
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        num_labels=len(labels.names),
        id2label=dict(enumerate(labels.names)),
        label2id={name: i for i, name in enumerate(labels.names)},
        ignore_mismatched_sizes=True,  # allows re-fine-tuning a checkpoint with a different label set
    )

    # ---- optimizer: AdamW, no weight decay on biases and LayerNorm weights; linear warmup then decay
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _linear_schedule(step, warmup_steps, total_steps)
    )

    # ---- loop: one pass over shuffled, length-bucketed batches per epoch; evaluate; keep the best
    history, best = [], None
    with atomic_directory(out, force) as staging:
        bar = tqdm(total=total_steps, desc="train", unit="step", disable=not progress, file=sys.stderr)
        for epoch in range(1, config.epochs + 1):
            model.train()
            rng = random.Random(config.seed + epoch)
            for batch in _train_batches(encoder, train_ids, train_types, config.batch_size, rng):
                targets = torch.tensor([y_train[i] for i in batch.indices])
                output = model(
                    input_ids=torch.from_numpy(batch.input_ids),  # (B, T)
                    attention_mask=torch.from_numpy(batch.attention_mask),
                    token_type_ids=torch.from_numpy(batch.token_type_ids),
                    labels=targets,
                )
                output.loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{output.loss.item():.4f}")

            logits = predict_logits(model, encoder, eval_ids, eval_types, config.eval_batch_size)
            metrics = classification_metrics(y_eval, logits.argmax(-1), labels.names)
            history.append({"epoch": epoch, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]})
            improved = best is None or metrics["macro_f1"] > best["macro_f1"]
            bar.write(
                f"epoch {epoch}: dev accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
                + (" (best)" if improved else "")
            )
            if improved:
                best = {**metrics, "epoch": epoch}
                model.save_pretrained(staging)
        bar.close()

        shutil.copyfile(tokenizer_file, staging / "tokenizer.json")
        meta = {
            "labels": list(labels.names),
            "max_length": config.max_length,
            "base_model": config.model,
            "train_config": dataclasses.asdict(config),
            "best_epoch": best["epoch"],
            "dev_metrics": {k: best[k] for k in ("accuracy", "macro_f1")},
        }
        (staging / CHECKPOINT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        report = {"best": best, "history": history, "train_source": train_data.source, "eval_source": eval_data.source}
        (staging / "metrics.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return best


def predict_logits(model, encoder: TextEncoder, ids: list, type_ids: list, batch_size: int) -> np.ndarray:
    """(N, num_labels) logits from a torch model, in input order, with the runtime's length bucketing."""
    return batched_logits(TorchBackend(model), encoder, ids, type_ids, batch_size, model.config.num_labels)


class TorchBackend:
    """A torch sequence classifier behind the runtime's Backend interface (for evaluation and parity)."""

    def __init__(self, model) -> None:
        self.model = model.eval()

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(input_ids),
                attention_mask=torch.from_numpy(attention_mask),
                token_type_ids=torch.from_numpy(token_type_ids),
            )
        return out.logits.float().numpy()


def _train_batches(encoder: TextEncoder, ids: list, type_ids: list, batch_size: int, rng: random.Random):
    """Shuffle, then sort within windows of 50 batches so each batch pads little; shuffle the batches."""
    order = list(range(len(ids)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        for batch in encoder.batches([ids[i] for i in chunk], [type_ids[i] for i in chunk], batch_size):
            batch.indices = np.asarray(chunk)[batch.indices]  # back to dataset positions
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def _tokenizer_json(model_dir: Path) -> Path:
    """The model's fast-tokenizer file; converted from vocab files when a checkpoint lacks one."""
    path = model_dir / "tokenizer.json"
    if path.is_file():
        return path
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    converted = Path(tempfile.mkdtemp(prefix="edgebert-tok-")) / "tokenizer.json"
    tokenizer.backend_tokenizer.save(str(converted))
    return converted


def _say(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr)
