"""The training stages' configs: `TrainConfig` (fine-tuning) and `AdaptConfig` (masked-LM adaptation).

Every default lives here; the CLI flags map one-to-one to these fields and take their defaults from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.artifact import LONG_TEXT_POLICIES, SEQUENCE, TASKS
from ..core.errors import InputError
from ..core.validate import choice, positive
from ..modeling.vocabulary import TRIM_SCRIPTS
from ..tasks import task_class

POOLINGS = ("cls", "mean")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass
class TrainConfig:
    model: str = "minilm-l6"  # short name of a bundled encoder, or a local checkpoint directory
    task: str = SEQUENCE  # "sequence": one label per text; "multi_label": any number; "token": one per word (BIO)
    pooling: str = "cls"  # sequence task: "cls" ([CLS] -> pooler) or "mean" (mean of real tokens)
    max_length: int | str = 128  # or "auto": the 99th percentile of the training texts' token counts
    # "chunk": train on every window of a long text (core/artifact.LongText, its default stride and cap), each with
    # the text's label, and score dev as the runtime reads it (windows' logits averaged); the export then chunks too
    long_text: str = "truncate"
    epochs: int = 3
    batch_size: int = 16
    grad_accum: int = 1  # optimizer step every N batches: effective batch = batch_size x grad_accum
    learning_rate: float = 5e-5
    embedding_lr_scale: float = 1.0  # word embeddings learn at learning_rate x this (new vocabulary rows start random)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int | None = None  # early stopping: stop after N epochs without a better dev score
    class_weights: str = "none"  # "auto": weight each class by n / (classes x count), for imbalanced data
    precision: str = "auto"  # "auto": bf16 autocast where the CPU has native bf16 (AVX512-BF16/AMX), else fp32
    extend_vocab: bool = False  # add the training texts' [UNK] characters to the vocabulary (see vocab.py)
    # keep the pretrained word embeddings as they are: for a large vocabulary (e5's 250k rows) most of a step's
    # time is their gradient and AdamW update, and rows the training texts never use would only decay
    freeze_embeddings: bool = False
    # cut the encoder's vocabulary to the pieces of the training and dev texts before training (plus every piece of
    # the `trim_keep` scripts), so a 250k-row table shrinks to what the task reads and can be trained
    trim_vocab: bool = False
    trim_keep: tuple[str, ...] = ()  # e.g. ("cjk",): modeling/vocabulary.SCRIPTS
    seed: int = 42
    text_column: str = "text"
    text_pair_column: str = "text_pair"  # used when the data has this column (sentence-pair tasks)
    label_column: str = "label"
    eval_batch_size: int = 64
    # distillation (train/distill.py): `teacher` is a trained checkpoint; the student keeps `student_layers` of its layers
    teacher: str | None = None
    student_layers: int | None = None
    distill_temperature: float = 2.0
    distill_alpha: float = 0.5  # weight of the soft-target term; 1 - alpha on the hard labels
    distill_hidden_weight: float = 0.0  # weight of matching the kept layers' hidden states to the teacher's (0: off)
    # more in-domain text without labels (data sources): the student learns the teacher's answers on it as well
    distill_unlabelled: tuple[str, ...] = ()
    # an ensemble distilled into one model: exported artifacts (any encoder, any tokenizer) whose averaged answers on
    # the training texts the model learns beside the labels, with distill_temperature and distill_alpha
    ensemble: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        choice(self, "task", TASKS)
        choice(self, "pooling", POOLINGS)
        choice(self, "precision", PRECISIONS)
        choice(self, "class_weights", ("none", "auto"))
        choice(self, "long_text", LONG_TEXT_POLICIES)
        positive(self, "epochs", "batch_size", "eval_batch_size", "grad_accum")
        if self.patience is not None:
            positive(self, "patience")
        self._check_max_length()
        check_schedule(self)
        self._check_distillation()
        self._check_vocabulary()
        if self.pooling not in task_class(self.task).poolings:
            raise InputError(f"--pooling {self.pooling} does not apply to --task {self.task}; drop the flag.")

    def _check_max_length(self) -> None:
        if self.max_length == "auto":
            return
        if isinstance(self.max_length, str) and self.max_length.isdigit():
            self.max_length = int(self.max_length)
        if not isinstance(self.max_length, int) or not 3 <= self.max_length <= 512:
            raise InputError(
                f"--max-length must be 'auto' or between 3 and 512 (BERT's position limit), got {self.max_length}."
            )

    def _check_distillation(self) -> None:
        if (self.teacher is None) != (self.student_layers is None):
            raise InputError("Distillation needs both a teacher checkpoint and --layers.")
        if not 0 < self.distill_temperature <= 100 or not 0 <= self.distill_alpha <= 1:
            raise InputError("--temperature must be in (0, 100] and --alpha in [0, 1].")
        if not 0 <= self.distill_hidden_weight <= 100:  # also refuses NaN
            raise InputError(f"--hidden-weight must be in [0, 100], got {self.distill_hidden_weight}.")
        self.ensemble = tuple(str(path) for path in self.ensemble)
        self.distill_unlabelled = tuple(str(source) for source in self.distill_unlabelled)
        if self.distill_unlabelled and not self.teacher:
            raise InputError("--unlabelled texts are learnt from a teacher's answers: use it with `edgebert distill`.")
        task = task_class(self.task)
        if self.long_text == "chunk" and (self.ensemble or not task.trains_on_windows):
            raise InputError(
                f"--long-text chunk trains text classifiers on every window of their texts; it does not combine with "
                f"--ensemble, nor train a '{self.task}' model (its runtime reads long inputs in windows without it)."
            )
        if self.ensemble and (self.teacher or not task.distils_ensembles):
            raise InputError(
                f"--ensemble distills single-label sequence classifiers' answers into a fresh model; it does not "
                f"combine with a teacher checkpoint (distill) nor train a '{self.task}' model."
            )

    def _check_vocabulary(self) -> None:
        self.trim_keep = tuple(self.trim_keep)
        for script in self.trim_keep:
            if script not in TRIM_SCRIPTS:
                raise InputError(f"--trim-keep must be one of {list(TRIM_SCRIPTS)}, got {script!r}.")
        if self.trim_keep and not self.trim_vocab:
            raise InputError("--trim-keep says what --trim-vocab keeps: add --trim-vocab, or drop --trim-keep.")
        if self.trim_vocab and (self.extend_vocab or self.teacher):
            raise InputError(
                "--trim-vocab cuts a pretrained encoder's vocabulary; it does not combine with --extend-vocab or "
                "distillation (a student keeps its teacher's tokenizer). Drop one of them."
            )


@dataclass
class AdaptConfig:
    """Domain-adaptive pre-training (masked-language modelling on the task's own texts); see adapt.py."""

    model: str = "minilm-l6"  # short name of a bundled encoder, or a local checkpoint directory
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 2e-4  # higher than fine-tuning: the MLM head and any new embedding rows start random
    embedding_lr_scale: float = 1.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mask_probability: float = 0.15  # BERT's: of the chosen tokens 80% -> [MASK], 10% random, 10% kept
    max_length: int = 128
    precision: str = "auto"
    extend_vocab: bool = False
    seed: int = 42

    def __post_init__(self) -> None:
        choice(self, "precision", PRECISIONS)
        positive(self, "epochs", "batch_size")
        if not 3 <= self.max_length <= 512:
            raise InputError(f"--max-length must be between 3 and 512, got {self.max_length}.")
        if not 0 < self.mask_probability < 1:
            raise InputError(f"--mask-probability must be in (0, 1), got {self.mask_probability}.")
        check_schedule(self)


def check_schedule(config: TrainConfig | AdaptConfig) -> None:
    """The optimizer fields TrainConfig and AdaptConfig share."""
    if not 0 < config.learning_rate < 1:
        raise InputError(f"--lr must be in (0, 1), got {config.learning_rate}.")
    if not 0 <= config.warmup_ratio < 1:
        raise InputError(f"--warmup-ratio must be in [0, 1), got {config.warmup_ratio}.")
    if not (0 < config.embedding_lr_scale <= 1000 and config.learning_rate * config.embedding_lr_scale < 1):
        raise InputError(
            f"--embedding-lr-scale must be in (0, 1000] with --lr x scale below 1, got {config.embedding_lr_scale}."
        )
