"""Fine-tune a BERT-family encoder for sequence or token classification with plain torch.

Reads top to bottom: tokenizer -> data -> model -> optimizer -> loop (train, evaluate, keep best) -> save.
Models and heads are in modeling.py; what differs between sequence and token tasks is in train_tasks.py;
resume, Ctrl-C and multi-process plumbing is in train_state.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import check_writable
from .checkpoint import CHECKPOINT_META
from .config import AdaptConfig, TrainConfig
from .cpu import cpu_info, usable_cpu_count
from .data import TextDataset
from .errors import ArtifactExistsError, InputError, TrainingInterrupted, require
from .pretrained import resolve_model, wants_vocab_extension
from .runtime.tokenization import TextEncoder
from .token_task import IGNORE, TokenDataset
from .vocab import extend_vocabulary, plain_tokenizer, unk_share

UNK_WARNING_SHARE = 0.05  # warn when more than this share of training tokens is [UNK]


def train(
    train_data: TextDataset | TokenDataset,
    eval_data: TextDataset | TokenDataset,
    config: TrainConfig,
    out: Path,
    *,
    force: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, keep the checkpoint with the best dev score, write it to `out`. Returns its metrics."""
    torch = require("torch", "train")
    require("transformers", "train")
    from tqdm.auto import tqdm

    from .modeling import new_model, resize_embeddings
    from .train_report import write_training_report
    from .train_state import STATE_FILE, Progress, StopRequest, World, finish, load_state, partial_dir, save_state
    from .train_tasks import SequenceTask, TokenTask

    out = Path(out)
    world = World()
    say = (lambda message: print(message, file=sys.stderr)) if progress and world.is_main else (lambda _: None)
    if not resume:
        check_writable(out, force)
    partial = partial_dir(out)
    if not resume and partial.exists():
        if not force:
            raise ArtifactExistsError(
                f"An interrupted run's state is in {partial}: add --resume to continue it, or --force to start over."
            )
        if world.is_main:
            import shutil

            shutil.rmtree(partial)
    world.barrier()
    seed_everything(torch, config.seed)
    torch.set_num_threads(max(1, usable_cpu_count() // world.size))
    if config.task == "token":
        task = TokenTask.from_training_data(train_data)
    else:
        task = SequenceTask.from_training_data(train_data, config.label_column)
    labels = list(task.labels.names)

    # ---- tokenizer: the same TextEncoder the runtime uses, so training and inference ids are identical
    model_dir = resolve_model(config.model)
    saved_tokenizer = partial / "tokenizer.json"
    if resume and saved_tokenizer.is_file():
        tokenizer_json, vocab = saved_tokenizer.read_text(encoding="utf-8"), None
    else:
        tokenizer_json, vocab = prepare_tokenizer(config, model_dir, train_data.texts, say)
    tokenizer = plain_tokenizer(tokenizer_json)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    max_length = _choose_max_length(config, tokenizer, train_data.texts, model_dir, say)
    encoder = TextEncoder(tokenizer, max_length)  # sets truncation at max_length
    train_set, eval_set = task.encode(encoder, train_data), task.encode(encoder, eval_data)
    if config.task == "token" and task.truncated_words:
        say(f"{task.truncated_words} words fall beyond {max_length} tokens and are not trained or scored")
    if world.is_main:
        partial.mkdir(parents=True, exist_ok=True)
        saved_tokenizer.write_text(tokenizer_json, encoding="utf-8")
        if vocab is not None:
            (partial / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")

    # ---- model: pretrained encoder + freshly initialised head (+ new embedding rows for an extended vocabulary)
    model = new_model(model_dir, config.task, config.pooling, labels)
    added = resize_embeddings(model, vocab_size, config.seed)
    if added:
        say(f"added {added} embedding rows for the extended vocabulary ({vocab_size} tokens)")
    ddp_model = world.wrap(model)

    # ---- optimizer: AdamW, no weight decay on biases and LayerNorm weights; linear warmup then decay
    batches_per_epoch = len(train_batches(encoder, train_set, config.batch_size, random.Random(0)))
    steps_per_epoch = math.ceil(batches_per_epoch // world.size / config.grad_accum)
    if steps_per_epoch == 0:
        raise InputError(f"{len(train_set.ids)} training examples are too few for {world.size} processes.")
    total_steps = steps_per_epoch * config.epochs
    optimizer, scheduler = adamw_with_linear_schedule(torch, model, config, total_steps)
    class_weights = _class_weights(torch, config, task.class_counts(train_set), labels, say)
    bf16 = use_bf16(config)
    say(
        f"{len(train_set.ids)} train / {len(eval_set.ids)} dev examples; {steps_per_epoch} steps/epoch x {config.epochs}"
        f" (batch {config.batch_size} x accumulation {config.grad_accum} x {world.size} process(es)); "
        f"{'bf16 autocast' if bf16 else 'fp32'}"
    )

    state_config = {**dataclasses.asdict(config), "max_length": max_length}
    state = Progress()
    if resume:
        state = load_state(partial / STATE_FILE, model, optimizer, scheduler, state_config)
        say(
            f"resuming after epoch {state.epoch}, step {state.step_in_epoch} of the next ({state.global_step} steps done)"
        )

    # ---- loop: one pass over shuffled, length-bucketed batches per epoch; evaluate; keep the best
    stop = StopRequest()
    bar = tqdm(
        total=total_steps,
        initial=state.global_step,
        desc="train",
        unit="step",
        disable=not progress or not world.is_main,
        file=sys.stderr,
    )
    with stop.installed():
        for epoch in range(state.epoch + 1, config.epochs + 1):
            ddp_model.train()
            batches = world.shard(
                train_batches(encoder, train_set, config.batch_size, random.Random(config.seed + epoch))
            )
            groups = [batches[i : i + config.grad_accum] for i in range(0, len(batches), config.grad_accum)]
            for group in groups[state.step_in_epoch :]:
                if world.any(stop.requested):
                    break
                step_loss = 0.0
                for batch in group:
                    targets = torch.from_numpy(task.batch_targets(train_set, batch))  # (B,) or (B, T)
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        logits = ddp_model(
                            input_ids=torch.from_numpy(batch.input_ids),  # (B, T)
                            attention_mask=torch.from_numpy(batch.attention_mask),
                            token_type_ids=torch.from_numpy(batch.token_type_ids),
                        ).logits  # (B, K) or (B, T, K)
                    loss = torch.nn.functional.cross_entropy(
                        logits.float().reshape(-1, logits.shape[-1]),
                        targets.reshape(-1),
                        weight=class_weights,
                        ignore_index=IGNORE,
                    )
                    (loss / len(group)).backward()
                    step_loss += loss.item() / len(group)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.step_in_epoch += 1
                state.global_step += 1
                state.losses.append(step_loss)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{step_loss:.4f}")
            if world.any(stop.requested):
                if world.is_main:
                    save_state(partial / STATE_FILE, model, optimizer, scheduler, state, state_config)
                bar.close()
                world.close()
                raise TrainingInterrupted(
                    f"Training stopped at epoch {epoch}, step {state.step_in_epoch}/{len(groups)}; "
                    f"state saved in {partial}. Continue with the same command plus --resume."
                )

            improved, early_stop = False, False
            if world.is_main:
                metrics = task.evaluate(TorchBackend(model), encoder, eval_set, config.eval_batch_size)
                score = metrics[task.score_name]
                state.history.append({"epoch": epoch, "step": state.global_step, **_headline(metrics, task.score_name)})
                improved = state.best is None or score > state.best[task.score_name]
                bar.write(
                    f"epoch {epoch}: dev "
                    + ", ".join(f"{k} {v:.4f}" for k, v in _headline(metrics, task.score_name).items())
                    + (" (best)" if improved else "")
                )
                if improved:
                    state.best, state.epochs_without_improvement = {**metrics, "epoch": epoch}, 0
                    model.save_pretrained(partial / "best")
                else:
                    state.epochs_without_improvement += 1
                early_stop = config.patience is not None and state.epochs_without_improvement >= config.patience
                state.epoch, state.step_in_epoch = epoch, 0
                save_state(partial / STATE_FILE, model, optimizer, scheduler, state, state_config)
            else:
                state.epoch, state.step_in_epoch = epoch, 0
            if world.agree(early_stop):
                say(f"early stopping: no better dev {task.score_name} for {config.patience} epoch(s)")
                break
    bar.close()

    if world.is_main:
        best_dir = partial / "best"
        best_dir.joinpath("tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
        if (partial / "vocab.txt").is_file():
            (partial / "vocab.txt").replace(best_dir / "vocab.txt")
        meta = {
            "labels": labels,
            "max_length": max_length,
            "base_model": config.model,
            "task": config.task,
            "pooling": config.pooling,
            "train_config": state_config,
            "best_epoch": state.best["epoch"],
            "dev_metrics": _headline(state.best, task.score_name),
        }
        (best_dir / CHECKPOINT_META).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        report = {
            "best": state.best,
            "score_name": task.score_name,
            "history": state.history,
            "losses": state.losses,
            "train_source": train_data.source,
            "eval_source": eval_data.source,
            "processes": world.size,
        }
        write_training_report(best_dir, report)
        finish(partial, out)
    best = world.share(state.best)
    world.close()
    return {**best, "score_name": task.score_name}


class TorchBackend:
    """A torch classifier behind the runtime's Backend interface (for evaluation and parity)."""

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


def prepare_tokenizer(
    config: TrainConfig | AdaptConfig, model_dir: Path, texts: list[str], say
) -> tuple[str, list[str] | None]:
    """The encoder's tokenizer.json text, extended with the data's characters when asked (or hinted when needed)."""
    path = _tokenizer_json(model_dir)
    if config.extend_vocab or wants_vocab_extension(config.model):
        extension = extend_vocabulary(path, texts)
        say(
            f"vocabulary extended by {len(extension.added)} tokens; [UNK] share of training tokens "
            f"{extension.unk_share_before:.1%} -> {extension.unk_share_after:.2%}"
        )
        return extension.tokenizer_json, extension.vocab
    tokenizer_json = path.read_text(encoding="utf-8")
    share = unk_share(plain_tokenizer(tokenizer_json), texts[:2000])
    if share > UNK_WARNING_SHARE:
        say(
            f"warning: {share:.0%} of the training tokens are [UNK]: the encoder's vocabulary does not cover this "
            "text. Add --extend-vocab (or use --model minilm-l6-zh for Chinese)."
        )
    return tokenizer_json, None


def _choose_max_length(config: TrainConfig, tokenizer, texts: list[str], model_dir: Path, say) -> int:
    """--max-length N, or 'auto': the 99th percentile of token counts, rounded up to a multiple of 8.
    `tokenizer` must not truncate (see vocab.plain_tokenizer)."""
    position_limit = encoder_positions(model_dir)
    lengths = np.asarray([len(e.ids) for e in tokenizer.encode_batch(texts)])
    if config.max_length == "auto":
        p99 = float(np.percentile(lengths, 99))
        max_length = int(min(position_limit, 512, max(8, math.ceil(p99 / 8) * 8)))
        say(f"--max-length auto: 99th percentile of training lengths is {p99:.0f} tokens -> {max_length}")
    else:
        max_length = int(config.max_length)
        if max_length > position_limit:
            raise InputError(f"--max-length {max_length} exceeds the encoder's {position_limit} positions.")
    truncated = int((lengths > max_length).sum())
    say(
        f"{truncated} of {len(lengths)} training texts ({truncated / len(lengths):.1%}) are truncated at {max_length} tokens"
    )
    return max_length


def encoder_positions(model_dir: Path) -> int:
    """How many token positions the encoder has (max_position_embeddings), the ceiling for --max-length."""
    return json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings", 512)


def _class_weights(torch, config: TrainConfig, counts: np.ndarray, labels: list[str], say):
    """'auto': n / (classes x count_c), so every class contributes equally to the loss."""
    if config.class_weights == "none":
        return None
    if (counts == 0).any():
        missing = [labels[i] for i in np.nonzero(counts == 0)[0]]
        raise InputError(f"--class-weights auto: labels {missing} never occur in the training targets.")
    weights = counts.sum() / (len(counts) * counts)
    say("class weights: " + ", ".join(f"{name} {w:.2f}" for name, w in zip(labels, weights, strict=True)))
    return torch.tensor(weights, dtype=torch.float32)


def use_bf16(config: TrainConfig | AdaptConfig) -> bool:
    """bf16 autocast only where the CPU computes bf16 natively; elsewhere it is emulated and slower."""
    if config.precision != "auto":
        return config.precision == "bf16"
    flags = cpu_info().flags
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _headline(metrics: dict[str, Any], score_name: str) -> dict[str, float]:
    keys = ("accuracy", "macro_f1") if score_name == "macro_f1" else ("precision", "recall", "f1")
    return {k: float(metrics[k]) for k in keys}


def train_batches(encoder: TextEncoder, data, batch_size: int, rng: random.Random) -> list:
    """Shuffle, then sort within windows of 50 batches so each batch pads little; shuffle the batches."""
    order = list(range(len(data.ids)))
    rng.shuffle(order)
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        for batch in encoder.batches([data.ids[i] for i in chunk], [data.type_ids[i] for i in chunk], batch_size):
            batch.indices = np.asarray(chunk)[batch.indices]  # back to dataset positions
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def adamw_with_linear_schedule(torch, model, config: TrainConfig | AdaptConfig, total_steps: int):
    """AdamW with no weight decay on biases and LayerNorm weights; linear warmup, then linear decay to 0."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
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


def _tokenizer_json(model_dir: Path) -> Path:
    """The model's fast-tokenizer file; converted from vocab files when a checkpoint lacks one."""
    path = model_dir / "tokenizer.json"
    if path.is_file():
        return path
    import tempfile

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    converted = Path(tempfile.mkdtemp(prefix="edgebert-tok-")) / "tokenizer.json"
    tokenizer.backend_tokenizer.save(str(converted))
    return converted
