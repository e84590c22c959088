"""Fine-tune a BERT-family encoder for sequence or token classification with plain torch.

`train` reads top to bottom as its stages: start_run -> choose_task -> prepare_text (text.py) -> build_model ->
build_schedule -> restore_progress -> run_epochs (train_step, end_epoch) -> save_checkpoint.
Models and heads are in modeling/models.py; what differs between sequence and token tasks is in tasks/;
resume, Ctrl-C and multi-process plumbing is in state.py; the tokenizer and max length in tokenizer.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.artifact import TOKENIZER
from ..core.cpu import usable_cpu_count
from ..core.errors import ArtifactExistsError, InputError, TrainingInterrupted, require
from ..core.files import check_writable
from ..core.progress import progress_bar
from ..data.text import LabelSet, TextDataset
from ..data.tokens import TokenDataset
from ..modeling.checkpoint import CHECKPOINT_META, CheckpointMeta, read_checkpoint_meta
from ..modeling.pretrained import provenance, resolve_model
from ..runtime.tokenization import TextEncoder
from ..tasks import Task, task_class, task_for
from ..tasks.base import Encoded
from .config import TrainConfig
from .optimizer import adamw_with_linear_schedule, seed_everything, use_bf16
from .text import VOCAB_FILE, Text, prepare_text


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
    run = start_run(Path(out), config, train_data, eval_data, force=force, resume=resume, progress=progress)
    seed_everything(torch, config.seed)
    torch.set_num_threads(max(1, usable_cpu_count() // run.world.size))
    task, config, teacher_meta = choose_task(config, train_data)
    model_dir = resolve_model(config.model, run.say)
    text = prepare_text(run, config, model_dir, task, teacher_meta, train_data, eval_data)
    config = dataclasses.replace(config, max_length=text.max_length)  # 'auto' resolved: what a resume must match
    trainee = build_model(run, config, model_dir, task, text)
    schedule = build_schedule(run, config, task, text, trainee)
    state = restore_progress(run, config, trainee, schedule)
    state = run_epochs(run, config, task, text, trainee, schedule, state)
    if run.world.is_main:
        save_checkpoint(run, config, task, text, state, teacher_meta, (train_data.source, eval_data.source))
    best = run.world.share(state.best)
    run.world.close()
    return {**best, "score_name": task.score_name}


@dataclass
class Run:
    """Where and how this run works: its output, the partial directory it fills, its process group."""

    out: Path
    partial: Path
    world: Any  # state.World
    say: Callable[[str], None]
    progress: bool
    resume: bool


@dataclass
class Trainee:
    model: Any  # the classifier being trained
    ddp_model: Any  # the same, wrapped for data parallelism when several processes run
    teacher: Any = None  # distillation: the frozen teacher
    kept: list[int] = dataclasses.field(default_factory=list)  # distillation: teacher layers the student copied
    match_hidden: bool = False  # distill --hidden-weight: student layers also learn the teacher's hidden states
    soft_targets: Any = None  # --ensemble: (N, K) log-probabilities of the ensemble on each training text


@dataclass
class Schedule:
    optimizer: Any
    scheduler: Any
    class_weights: Any  # a (K,) tensor or None
    bf16: bool
    steps_per_epoch: int
    total_steps: int


def start_run(
    out: Path, config: TrainConfig, train_data, eval_data, *, force: bool, resume: bool, progress: bool
) -> Run:
    """Check the output can be written (and holds no interrupted run unless resuming) before any work starts."""
    from .state import World, partial_dir

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
            shutil.rmtree(partial)
    world.barrier()
    return Run(out, partial, world, say, progress, resume)


def choose_task(config: TrainConfig, train_data) -> tuple[Task, TrainConfig, CheckpointMeta | None]:
    """The task and its labels: from the training data, or for distillation from the teacher (in its logit order,
    with its max length and pooling)."""
    if not config.teacher:
        return task_class(config.task).from_training_data(train_data, config.label_column), config, None
    teacher_meta = read_checkpoint_meta(Path(config.teacher))
    if teacher_meta.task != config.task:
        raise InputError(f"The teacher {config.teacher} is a '{teacher_meta.task}' model, not '{config.task}'.")
    task = task_for(config.task, LabelSet(tuple(teacher_meta.labels)))
    config = dataclasses.replace(config, max_length=teacher_meta.max_length, pooling=teacher_meta.pooling)
    return task, config, teacher_meta


def build_model(run: Run, config: TrainConfig, model_dir: Path, task: Task, text: Text) -> Trainee:
    """The pretrained encoder with a fresh head (and new embedding rows for an extended vocabulary), or for
    distillation a student made of some of the teacher's layers."""
    from ..modeling.models import load_trained, new_model, resize_embeddings

    teacher, kept = None, []
    if config.teacher:
        from .distill import student_from_teacher

        teacher = load_trained(Path(config.teacher), config.task, config.pooling).eval()
        model, kept = student_from_teacher(teacher, config.student_layers)
        run.say(f"student: layers {[i + 1 for i in kept]} of the teacher's {teacher.config.num_hidden_layers}, copied")
    else:
        model = new_model(model_dir, config.task, config.pooling, list(task.labels.names))
        if text.trim is not None:
            from ..modeling.vocabulary import trim_embeddings

            trim_embeddings(model, text.trim)
        vocab_size = text.encoder.tokenizer.get_vocab_size(with_added_tokens=True)
        added = resize_embeddings(model, vocab_size, config.seed)
        if added:
            run.say(f"added {added} embedding rows for the extended vocabulary ({vocab_size} tokens)")
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    match_hidden = teacher is not None and config.distill_hidden_weight > 0
    return Trainee(model, run.world.wrap(model), teacher, kept, match_hidden, text.soft_targets)


def build_schedule(run: Run, config: TrainConfig, task: Task, text: Text, trainee: Trainee) -> Schedule:
    """AdamW (no weight decay on biases and LayerNorm weights), linear warmup then decay, class weights."""
    import torch

    batches_per_epoch = len(train_batches(text.encoder, text.train_set, config.batch_size, random.Random(0)))
    steps_per_epoch = math.ceil(batches_per_epoch // run.world.size / config.grad_accum)
    if steps_per_epoch == 0:
        raise InputError(f"{len(text.train_set.ids)} training examples are too few for {run.world.size} processes.")
    total_steps = steps_per_epoch * config.epochs
    optimizer, scheduler = adamw_with_linear_schedule(torch, trainee.model, config, total_steps)
    labels = list(task.labels.names)
    class_weights = _class_weights(torch, config, task.class_counts(text.train_set), labels, run.say)
    bf16 = use_bf16(config)
    run.say(
        f"{len(text.train_set.ids)} train / {len(text.eval_set.ids)} dev examples; {steps_per_epoch} steps/epoch x "
        f"{config.epochs} (batch {config.batch_size} x accumulation {config.grad_accum} x {run.world.size} "
        f"process(es)); {'bf16 autocast' if bf16 else 'fp32'}"
    )
    return Schedule(optimizer, scheduler, class_weights, bf16, steps_per_epoch, total_steps)


def restore_progress(run: Run, config: TrainConfig, trainee: Trainee, schedule: Schedule):
    """A fresh Progress, or on --resume the interrupted run's (model, optimizer, scheduler and RNGs restored)."""
    from .state import STATE_FILE, Progress, load_state

    if not run.resume:
        return Progress()
    state = load_state(
        run.partial / STATE_FILE, trainee.model, schedule.optimizer, schedule.scheduler, dataclasses.asdict(config)
    )
    run.say(
        f"resuming after epoch {state.epoch}, step {state.step_in_epoch} of the next ({state.global_step} steps done)"
    )
    return state


def run_epochs(run: Run, config: TrainConfig, task: Task, text: Text, trainee: Trainee, schedule: Schedule, state):
    """One pass over shuffled, length-bucketed batches per epoch; evaluate; keep the best. Ctrl-C or SIGTERM
    finishes the current step, saves a resumable state and raises TrainingInterrupted."""
    from .state import STATE_FILE, StopRequest, save_state

    world, stop = run.world, StopRequest()
    bar = progress_bar(
        total=schedule.total_steps,
        initial=state.global_step,
        desc="train",
        unit="step",
        disable=not run.progress or not world.is_main,
    )
    with stop.installed():
        for epoch in range(state.epoch + 1, config.epochs + 1):
            trainee.ddp_model.train()
            batches = world.shard(
                train_batches(text.encoder, text.train_set, config.batch_size, random.Random(config.seed + epoch))
            )
            groups = [batches[i : i + config.grad_accum] for i in range(0, len(batches), config.grad_accum)]
            for group in groups[state.step_in_epoch :]:
                if world.any(stop.requested):
                    break
                loss = train_step(config, task, text.train_set, trainee, schedule, group)
                state.step_in_epoch += 1
                state.global_step += 1
                state.losses.append(loss)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}")
            if world.any(stop.requested):
                if world.is_main:
                    settings = dataclasses.asdict(config)
                    save_state(
                        run.partial / STATE_FILE, trainee.model, schedule.optimizer, schedule.scheduler, state, settings
                    )
                bar.close()
                world.close()
                raise TrainingInterrupted(
                    f"Training stopped at epoch {epoch}, step {state.step_in_epoch}/{len(groups)}; "
                    f"state saved in {run.partial}. Continue with the same command plus --resume."
                )
            if world.agree(end_epoch(run, config, task, text, trainee, schedule, state, epoch, bar)):
                run.say(f"early stopping: no better dev {task.score_name} for {config.patience} epoch(s)")
                break
    bar.close()
    return state


def train_step(
    config: TrainConfig, task: Task, train_set: Encoded, trainee: Trainee, schedule: Schedule, group
) -> float:
    """One optimizer step over `group` (grad-accum batches); returns the mean loss."""
    import torch

    step_loss = 0.0
    for batch in group:
        loss = batch_loss(torch, config, task, train_set, trainee, schedule, batch)
        (loss / len(group)).backward()
        step_loss += loss.item() / len(group)
    torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), 1.0)
    schedule.optimizer.step()
    schedule.scheduler.step()
    schedule.optimizer.zero_grad(set_to_none=True)
    return step_loss


def batch_loss(torch, config: TrainConfig, task: Task, train_set: Encoded, trainee: Trainee, schedule: Schedule, batch):
    """The task's loss against the labels, or for a student the distillation loss against its teacher."""
    from .distill import hidden_state_loss

    targets = torch.from_numpy(task.batch_targets(train_set, batch))  # (B,) or (B, T)
    inputs = {
        "input_ids": torch.from_numpy(batch.input_ids),  # (B, T)
        "attention_mask": torch.from_numpy(batch.attention_mask),
        "token_type_ids": torch.from_numpy(batch.token_type_ids),
    }
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=schedule.bf16):
        outputs = trainee.ddp_model(**inputs, output_hidden_states=trainee.match_hidden)
    logits = outputs.logits  # (B, K) or (B, T, K)
    if trainee.teacher is None and trainee.soft_targets is None:
        return task.loss(torch, logits, targets, schedule.class_weights)
    if trainee.teacher is None:  # --ensemble: the members' answers on these texts, computed once before training
        teacher_logits = torch.from_numpy(trainee.soft_targets[batch.indices])
    else:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=schedule.bf16):
            teacher_out = trainee.teacher(**inputs, output_hidden_states=trainee.match_hidden)
        teacher_logits = teacher_out.logits
    loss = task.distillation_loss(
        torch,
        logits.float(),
        teacher_logits.float(),
        targets,
        temperature=config.distill_temperature,
        alpha=config.distill_alpha,
        class_weights=schedule.class_weights,
    )
    if trainee.match_hidden:
        hidden = hidden_state_loss(
            outputs.hidden_states, teacher_out.hidden_states, trainee.kept, inputs["attention_mask"]
        )
        loss = loss + config.distill_hidden_weight * hidden
    return loss


def end_epoch(
    run: Run, config: TrainConfig, task: Task, text: Text, trainee: Trainee, schedule: Schedule, state, epoch: int, bar
) -> bool:
    """Evaluate on dev (main process), keep the best model, save a resumable state; True to stop early."""
    from ..modeling.models import TorchBackend
    from .state import STATE_FILE, save_state

    state.epoch, state.step_in_epoch = epoch, 0
    if not run.world.is_main:
        return False
    metrics = task.evaluate(TorchBackend(trainee.model), text.encoder, text.eval_set, config.eval_batch_size)
    improved = state.best is None or metrics[task.score_name] > state.best[task.score_name]
    state.history.append({"epoch": epoch, "step": state.global_step, **task.headline(metrics)})
    bar.write(
        f"epoch {epoch}: dev "
        + ", ".join(f"{k} {v:.4f}" for k, v in task.headline(metrics).items())
        + (" (best)" if improved else "")
    )
    if improved:
        extras = task.checkpoint_extras(metrics)  # e.g. multi-label thresholds, decided on this dev pass
        state.best, state.epochs_without_improvement = {**metrics, "epoch": epoch, "checkpoint_extras": extras}, 0
        trainee.model.save_pretrained(run.partial / "best")
    else:
        state.epochs_without_improvement += 1
    save_state(
        run.partial / STATE_FILE,
        trainee.model,
        schedule.optimizer,
        schedule.scheduler,
        state,
        dataclasses.asdict(config),
    )
    return config.patience is not None and state.epochs_without_improvement >= config.patience


def save_checkpoint(
    run: Run, config: TrainConfig, task: Task, text: Text, state, teacher_meta, sources: tuple[str, str]
) -> None:
    """The best model + tokenizer + CheckpointMeta + training report, moved into place as `out`."""
    from .report import write_training_report
    from .state import finish

    best_dir = run.partial / "best"
    best_dir.joinpath(TOKENIZER).write_text(text.tokenizer_json, encoding="utf-8")
    for path in text.companions:
        shutil.copyfile(path, best_dir / path.name)
    if (run.partial / VOCAB_FILE).is_file():
        (run.partial / VOCAB_FILE).replace(best_dir / VOCAB_FILE)
    meta = CheckpointMeta(
        labels=list(task.labels.names),
        max_length=text.max_length,
        base_model=f"distilled from {config.teacher}" if config.teacher else config.model,
        task=config.task,
        pooling=config.pooling,
        train_config=dataclasses.asdict(config),
        best_epoch=state.best["epoch"],
        dev_metrics=task.headline(state.best),
        pretrained=teacher_meta.pretrained if teacher_meta is not None else provenance(config.model),
        **state.best.get("checkpoint_extras", {}),
    )
    meta_text = json.dumps(dataclasses.asdict(meta), indent=2, ensure_ascii=False)
    (best_dir / CHECKPOINT_META).write_text(meta_text, encoding="utf-8")
    report = {
        "best": state.best,
        "score_name": task.score_name,
        "history": state.history,
        "losses": state.losses,
        "train_source": sources[0],
        "eval_source": sources[1],
        "processes": run.world.size,
    }
    write_training_report(best_dir, report)
    finish(run.partial, run.out)


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
