"""Fine-tune a BERT-family encoder for sequence or token classification with plain torch.

Reads top to bottom: tokenizer -> data -> model -> optimizer -> loop (train, evaluate, keep best) -> save.
Models and heads are in modeling/models.py; what differs between sequence and token tasks is in tasks/;
resume, Ctrl-C and multi-process plumbing is in state.py; the tokenizer and max length in tokenizer.py.
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

from ..core.cpu import usable_cpu_count
from ..core.errors import ArtifactExistsError, InputError, TrainingInterrupted, require
from ..core.files import check_writable
from ..core.progress import progress_bar
from ..data.text import LabelSet, TextDataset
from ..data.tokens import IGNORE, TokenDataset
from ..modeling.checkpoint import CHECKPOINT_META, read_checkpoint_meta
from ..modeling.pretrained import provenance, resolve_model
from ..runtime.tokenization import TextEncoder
from ..tasks import task_class, task_for
from .config import TrainConfig
from .optimizer import adamw_with_linear_schedule, seed_everything, use_bf16
from .tokenizer import choose_max_length, prepare_tokenizer
from .vocab import plain_tokenizer


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
    from ..modeling.models import TorchBackend, load_trained, new_model, resize_embeddings
    from .distill import distillation_loss, hidden_state_loss
    from .report import write_training_report
    from .state import STATE_FILE, Progress, StopRequest, World, finish, load_state, partial_dir, save_state

    out = Path(out)
    world = World()
    say = (lambda message: print(message, file=sys.stderr)) if progress and world.is_main else (lambda _: None)
    check_writable(out, force or resume, inputs=(config.model, train_data.source, eval_data.source))
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
    teacher_meta = read_checkpoint_meta(Path(config.teacher)) if config.teacher else None
    if teacher_meta is not None:  # distillation: the teacher's labels, in its logit order
        if teacher_meta.task != config.task:
            raise InputError(f"The teacher {config.teacher} is a '{teacher_meta.task}' model, not '{config.task}'.")
        task = task_for(config.task, LabelSet(tuple(teacher_meta.labels)))
        config = dataclasses.replace(config, max_length=teacher_meta.max_length, pooling=teacher_meta.pooling)
    else:
        task = task_class(config.task).from_training_data(train_data, config.label_column)
    labels = list(task.labels.names)

    # ---- tokenizer: the same TextEncoder the runtime uses, so training and inference ids are identical
    model_dir = resolve_model(config.model, say)
    saved_tokenizer = partial / "tokenizer.json"
    if resume and saved_tokenizer.is_file():
        tokenizer_json, vocab = saved_tokenizer.read_text(encoding="utf-8"), None
    elif teacher_meta is not None:  # the student reads text exactly as its teacher does
        tokenizer_json, vocab = (Path(config.teacher) / "tokenizer.json").read_text(encoding="utf-8"), None
    else:
        tokenizer_json, vocab = prepare_tokenizer(config, model_dir, train_data.texts, say)
    tokenizer = plain_tokenizer(tokenizer_json)
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    max_length = choose_max_length(config, tokenizer, train_data.texts, model_dir, say)
    encoder = TextEncoder(tokenizer, max_length)  # sets truncation at max_length
    train_set, eval_set = task.encode(encoder, train_data), task.encode(encoder, eval_data)
    if task.truncated_words:
        say(f"{task.truncated_words} words fall beyond {max_length} tokens and are not trained or scored")
    if world.is_main:
        partial.mkdir(parents=True, exist_ok=True)
        saved_tokenizer.write_text(tokenizer_json, encoding="utf-8")
        if vocab is not None:
            (partial / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")

    # ---- model: pretrained encoder + freshly initialised head (+ new embedding rows for an extended vocabulary)
    teacher, kept = None, []
    if teacher_meta is not None:
        from .distill import student_from_teacher

        teacher = load_trained(Path(config.teacher), config.task, teacher_meta.pooling).eval()
        model, kept = student_from_teacher(teacher, config.student_layers)
        say(f"student: layers {[i + 1 for i in kept]} of the teacher's {teacher.config.num_hidden_layers}, copied")
    else:
        model = new_model(model_dir, config.task, config.pooling, labels)
        added = resize_embeddings(model, vocab_size, config.seed)
        if added:
            say(f"added {added} embedding rows for the extended vocabulary ({vocab_size} tokens)")
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    ddp_model = world.wrap(model)
    match_hidden = teacher is not None and config.distill_hidden_weight > 0  # distill --hidden-weight

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
    bar = progress_bar(
        total=total_steps,
        initial=state.global_step,
        desc="train",
        unit="step",
        disable=not progress or not world.is_main,
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
                    inputs = {
                        "input_ids": torch.from_numpy(batch.input_ids),  # (B, T)
                        "attention_mask": torch.from_numpy(batch.attention_mask),
                        "token_type_ids": torch.from_numpy(batch.token_type_ids),
                    }
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        outputs = ddp_model(**inputs, output_hidden_states=match_hidden)
                    logits = outputs.logits  # (B, K) or (B, T, K)
                    if teacher is not None:
                        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                            teacher_out = teacher(**inputs, output_hidden_states=match_hidden)
                        loss = distillation_loss(
                            logits.float(),
                            teacher_out.logits.float(),
                            targets,
                            temperature=config.distill_temperature,
                            alpha=config.distill_alpha,
                            class_weights=class_weights,
                        )
                        if match_hidden:
                            hidden = hidden_state_loss(
                                outputs.hidden_states, teacher_out.hidden_states, kept, inputs["attention_mask"]
                            )
                            loss = loss + config.distill_hidden_weight * hidden
                    else:
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
                state.history.append({"epoch": epoch, "step": state.global_step, **task.headline(metrics)})
                improved = state.best is None or score > state.best[task.score_name]
                bar.write(
                    f"epoch {epoch}: dev "
                    + ", ".join(f"{k} {v:.4f}" for k, v in task.headline(metrics).items())
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
            "base_model": f"distilled from {config.teacher}" if config.teacher else config.model,
            "task": config.task,
            "pooling": config.pooling,
            "train_config": state_config,
            "best_epoch": state.best["epoch"],
            "dev_metrics": task.headline(state.best),
            "pretrained": teacher_meta.pretrained if teacher_meta is not None else provenance(config.model),
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
