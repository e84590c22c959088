"""`edgebert adapt` and `edgebert train`: the torch stages."""

from __future__ import annotations

import sys

from ..core.artifact import LONG_TEXT_POLICIES, MULTI_LABEL, TASKS
from ..core.errors import InputError
from ..modeling.pretrained import ENCODERS
from ..modeling.vocabulary import TRIM_SCRIPTS
from ..train.config import POOLINGS, PRECISIONS, AdaptConfig, TrainConfig
from .options import add_columns, add_output, columns, config_from_args, config_option

SHARED = (  # flag, field, help, argparse options: the options adapt and train have in common
    ("--model", "model", f"bundled encoder ({', '.join(ENCODERS)}) or a local Hugging Face directory", {}),
    ("--epochs", "epochs", "", {"type": int}),
    ("--batch-size", "batch_size", "", {"type": int}),
    ("--lr", "learning_rate", "peak learning rate", {"type": float}),
    (
        "--embedding-lr-scale",
        "embedding_lr_scale",
        "word embeddings learn at --lr x this (e.g. 10 for a new vocabulary's random rows)",
        {"type": float},
    ),
    ("--warmup-ratio", "warmup_ratio", "share of steps with a rising learning rate", {"type": float}),
    ("--precision", "precision", "'auto': bf16 autocast only on CPUs with native bf16", {"choices": PRECISIONS}),
    ("--extend-vocab", "extend_vocab", "add the texts' unknown characters to the vocabulary", {"action": "store_true"}),
    ("--seed", "seed", "", {"type": int}),
)


def _freeze_option(parser) -> None:
    config_option(
        parser,
        "--freeze-embeddings",
        TrainConfig,
        "freeze_embeddings",
        "keep the pretrained word embeddings fixed (much faster for large vocabularies)",
        action="store_true",
    )


def _long_text_option(parser, text: str) -> None:
    config_option(parser, "--long-text", TrainConfig, "long_text", text, choices=LONG_TEXT_POLICIES)


def _shared(parser, config_class) -> None:
    for flag, name, text, kwargs in SHARED:
        config_option(parser, flag, config_class, name, text, **kwargs)


def add_adapt(commands) -> None:
    p = commands.add_parser(
        "adapt",
        help="continue pre-training an encoder on your texts (before train)",
        description="Domain-adaptive pre-training: masked-language modelling on the training texts (labels unused). "
        "Writes an encoder directory for `edgebert train --model DIR`. Most useful with --extend-vocab "
        "(or --model minilm-l6-zh), whose new characters start untrained.",
    )
    p.add_argument("--data", required=True, help="texts: JSONL/CSV/TSV file, or a bundled dataset's train split")
    p.add_argument(
        "--eval",
        help="texts to measure masked-token accuracy on (default: a bundled dataset's dev split, or 5%% of --data)",
    )
    add_output(p, "encoder directory")
    _shared(p, AdaptConfig)
    config_option(p, "--max-length", AdaptConfig, "max_length", "tokens per text", type=int)
    config_option(p, "--mask-probability", AdaptConfig, "mask_probability", "share of tokens masked", type=float)
    add_columns(p, labels=False)
    p.set_defaults(run=run_adapt)


def run_adapt(args) -> int:
    from ..train.adapt import adapt, adaptation_texts

    config = config_from_args(AdaptConfig, args)
    texts, eval_texts = adaptation_texts(args.data, args.eval, seed=config.seed, text_column=args.text_column)
    report = adapt(texts, eval_texts, config, args.out, force=args.force, progress=not args.quiet, source=args.data)
    before, after = report["history"][0], report["history"][-1]
    print(
        f"saved {args.out}: dev masked-token accuracy {before['mlm_accuracy']:.4f} -> {after['mlm_accuracy']:.4f} "
        f"(loss {before['mlm_loss']:.3f} -> {after['mlm_loss']:.3f}); fine-tune it with "
        f"`edgebert train --model {args.out} ...`"
    )
    return 0


def add_train(commands) -> None:
    p = commands.add_parser(
        "train",
        help="fine-tune a classifier",
        description="Fine-tune a BERT-family encoder for text (or text-pair) classification or token tagging.",
    )
    p.add_argument(
        "--data", required=True, help="training data: JSONL/CSV/TSV file, or a bundled dataset (bbc_news, zh_reviews)"
    )
    p.add_argument(
        "--eval",
        help="dev data for model selection (default: a bundled dataset's dev split, or a stratified 10%% of --data)",
    )
    add_output(p, "checkpoint directory")
    config_option(
        p, "--task", TrainConfig, "task", "one label per text, any number per text, or per word", choices=list(TASKS)
    )
    p.add_argument(
        "--multi-label",
        action="store_true",
        help="any number of labels per text (lists in the label column): the same as --task multi_label",
    )
    config_option(p, "--pooling", TrainConfig, "pooling", "sentence vector: [CLS] or mean of tokens", choices=POOLINGS)
    config_option(p, "--max-length", TrainConfig, "max_length", "truncate to N tokens, or 'auto' (99th percentile)")
    _long_text_option(
        p,
        "'chunk': train on every window of a text longer than --max-length (each with the text's label) and score "
        "dev with the windows' logits averaged, as the exported artifact will read it",
    )
    _shared(p, TrainConfig)
    config_option(p, "--grad-accum", TrainConfig, "grad_accum", "optimizer step every N batches", type=int)
    config_option(p, "--patience", TrainConfig, "patience", "stop after N epochs without a better dev score", type=int)
    config_option(
        p,
        "--class-weights",
        TrainConfig,
        "class_weights",
        "'auto' reweights classes for imbalanced data",
        choices=["none", "auto"],
    )
    _freeze_option(p)
    config_option(
        p,
        "--trim-vocab",
        TrainConfig,
        "trim_vocab",
        "cut the encoder's vocabulary to the pieces of the training and dev texts before training, so the word "
        "embeddings are small enough to train",
        action="store_true",
    )
    p.add_argument(
        "--trim-keep",
        dest="trim_keep",
        metavar="SCRIPT",
        action="append",
        choices=TRIM_SCRIPTS,
        default=None,
        help="with --trim-vocab: also keep every piece of this script (cjk), so unseen text segments as before",
    )
    p.add_argument(
        "--ensemble",
        dest="ensemble",
        metavar="ARTIFACT",
        action="append",
        default=None,
        help="an exported classifier of the same labels (repeatable; any encoder): the model also learns the "
        "members' averaged answers on the training texts (an ensemble distilled into one model)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run with the same options")
    add_columns(p, pairs=True)
    p.set_defaults(run=run_train)


def run_train(args) -> int:
    from ..train.loop import train

    if args.multi_label:
        if args.task not in (None, MULTI_LABEL):
            raise InputError(f"--multi-label contradicts --task {args.task}; give one of them.")
        args.task = MULTI_LABEL
    config = config_from_args(TrainConfig, args)
    train_data, eval_data = training_data(args, config)
    best = train(train_data, eval_data, config, args.out, force=args.force, resume=args.resume, progress=not args.quiet)
    from ..tasks import task_class

    scores = task_class(config.task).describe(best)
    print(f"saved {args.out} (best epoch {best['epoch']}: dev {scores})")
    return 0


def training_data(args, config: TrainConfig):
    """(train, dev) as the task reads them; the dev split defaults to a bundled dataset's own."""
    from ..tasks import task_class

    say = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr))
    return task_class(config.task).load_training(args.data, args.eval, seed=config.seed, say=say, **columns(args))


def add_distill(commands) -> None:
    p = commands.add_parser(
        "distill",
        help="train a shallower student from a fine-tuned checkpoint (faster to run)",
        description="Knowledge distillation: a student made of --layers of the TEACHER checkpoint's encoder layers "
        "(evenly spaced, weights copied) learns the teacher's soft targets plus the labels, on --data, selected on "
        "--eval. It keeps the teacher's tokenizer, max length, pooling and labels; export it like any checkpoint.",
    )
    p.add_argument("teacher", metavar="TEACHER", help="a checkpoint directory from `edgebert train`")
    p.add_argument("--layers", type=int, required=True, dest="student_layers", help="encoder layers the student keeps")
    p.add_argument(
        "--data", required=True, help="training data (the teacher's, or more unlabelled-alike text with labels)"
    )
    p.add_argument("--eval", help="dev data for selection (default: a bundled dataset's dev split)")
    add_output(p, "student checkpoint directory")
    for flag, name, text, kwargs in SHARED[1:]:  # every shared flag but --model: the student is the teacher's
        if name != "extend_vocab":
            config_option(p, flag, TrainConfig, name, text, **kwargs)
    config_option(p, "--temperature", TrainConfig, "distill_temperature", "softmax temperature T", type=float)
    config_option(p, "--alpha", TrainConfig, "distill_alpha", "weight of the soft-target loss", type=float)
    config_option(
        p,
        "--hidden-weight",
        TrainConfig,
        "distill_hidden_weight",
        "weight of a loss matching each student layer's hidden states to the teacher layer it was copied from",
        type=float,
    )
    config_option(
        p,
        "--unlabelled",
        TrainConfig,
        "distill_unlabelled",
        "more in-domain texts without labels (repeatable; any label column is not read): the student learns the "
        "teacher's answers on them too",
        action="append",
        metavar="DATA",
    )
    _long_text_option(
        p,
        "'chunk': learn the teacher's answer on every window of a text longer than the teacher's max length (the "
        "text's label on each) and score dev with the windows' logits averaged, as the exported artifact will read it",
    )
    _freeze_option(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    add_columns(p)
    p.set_defaults(run=run_distill)


def run_distill(args) -> int:
    from pathlib import Path

    from ..core.errors import require
    from ..modeling.checkpoint import encoder_layers, read_checkpoint_meta
    from ..train.loop import train

    # before train/distill.py imports torch: a runtime-only install gets the fix, not a traceback
    require("torch", "train")

    # an edgebert checkpoint or a Hugging Face classifier directory; anything else is refused naming what is missing
    meta = read_checkpoint_meta(Path(args.teacher))
    from ..train.distill import kept_layers

    layers = encoder_layers(Path(args.teacher))  # None: unreadable, and the teacher's own load reports it
    if layers is not None:  # refuse a bad --layers before loading any data (a broken teacher fails at load)
        kept_layers(layers, args.student_layers)
    args.task = meta.task
    config = config_from_args(TrainConfig, args, model=args.teacher, teacher=args.teacher, task=meta.task)
    train_data, eval_data = training_data(args, config)
    best = train(train_data, eval_data, config, args.out, force=args.force, resume=args.resume, progress=not args.quiet)
    from ..tasks import task_class

    name = task_class(meta.task).headline_key
    print(
        f"saved {args.out}: {config.student_layers}-layer student, best epoch {best['epoch']}: dev {name} "
        f"{best[name]:.4f} (teacher: {(meta.dev_metrics or {}).get(name, float('nan')):.4f})"
    )
    return 0
