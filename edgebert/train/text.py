"""The training stage that reads text: the tokenizer (the saved one on resume, the teacher's for a student, else the
encoder's, maybe extended or trimmed), the max length, and both splits encoded as the runtime encodes them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.artifact import HF_TOKENIZER_FILES, TOKENIZER, LongText
from ..core.errors import InputError
from ..runtime.tokenization import TextEncoder
from ..tasks import Task
from ..tasks.base import Encoded
from .config import TrainConfig
from .tokenizer import choose_max_length, prepare_tokenizer
from .vocab import plain_tokenizer

if TYPE_CHECKING:
    from .loop import Run

VOCAB_FILE = "vocab.txt"  # an extended vocabulary's pieces, one per line (kept beside the checkpoint)
TRIM_FILE = "vocabulary_trim.json"  # --trim-vocab: the encoder's piece ids kept, so a resumed run cuts the same rows


@dataclass
class Text:
    """How the run reads text: the tokenizer (the runtime's own TextEncoder) and the encoded splits."""

    tokenizer_json: str
    vocab: list[str] | None  # the pieces of an extended vocabulary, else None
    encoder: TextEncoder
    max_length: int
    train_set: Encoded
    eval_set: Encoded
    companions: list[Path] = dataclasses.field(default_factory=list)  # tokenizer_config.json etc. to carry along
    trim: Any = None  # --trim-vocab: the modeling.vocabulary.Trim the encoder's embedding rows are cut by
    soft_targets: Any = None  # --ensemble: (N, K) the members' mean log-probabilities on each training text


def prepare_text(
    run: Run, config: TrainConfig, model_dir: Path, task: Task, teacher_meta, train_data, eval_data
) -> Text:
    """The tokenizer (the saved one on resume, the teacher's for a student, else the encoder's, maybe extended),
    the max length, and both splits encoded with the same TextEncoder the runtime uses, so ids are identical."""
    saved_tokenizer, trim = run.partial / TOKENIZER, None
    if run.resume and saved_tokenizer.is_file():
        tokenizer_json, vocab = saved_tokenizer.read_text(encoding="utf-8"), None
        trim = read_trim(run.partial / TRIM_FILE)
    elif teacher_meta is not None:
        tokenizer_json, vocab = (Path(config.teacher) / TOKENIZER).read_text(encoding="utf-8"), None
    else:
        tokenizer_json, vocab = prepare_tokenizer(config, model_dir, train_data.texts, run.say)
        if config.trim_vocab:
            tokenizer_json, trim = trim_training_vocabulary(
                tokenizer_json, config, task, train_data, eval_data, run.say
            )
    tokenizer = plain_tokenizer(tokenizer_json)
    max_length = choose_max_length(config, tokenizer, train_data.texts, model_dir, run.say)
    encoder = TextEncoder(tokenizer, max_length)  # sets truncation at max_length
    train_set, eval_set = encode_splits(config, task, encoder, train_data, eval_data, run.say)
    if task.truncated_words:
        run.say(f"{task.truncated_words} words fall beyond {max_length} tokens and are not trained or scored")
    if run.world.is_main:
        run.partial.mkdir(parents=True, exist_ok=True)
        saved_tokenizer.write_text(tokenizer_json, encoding="utf-8")
        if vocab is not None:
            (run.partial / VOCAB_FILE).write_text("\n".join(vocab) + "\n", encoding="utf-8")
        if trim is not None:
            write_trim(run.partial / TRIM_FILE, trim)
    source = Path(config.teacher) if teacher_meta is not None else model_dir  # so transformers reads it the same
    companions = [source / name for name in HF_TOKENIZER_FILES if (source / name).is_file()]
    soft_targets = None
    if config.ensemble:
        from .distill import ensemble_targets

        names = list(task.labels.names)
        soft_targets = ensemble_targets(config.ensemble, names, train_data.texts, train_data.pairs, run.say)
        if len(soft_targets) != len(train_set.ids):  # rows are matched by position
            raise InputError("--ensemble needs one answer per training example; this data's encoding dropped rows.")
    return Text(tokenizer_json, vocab, encoder, max_length, train_set, eval_set, companions, trim, soft_targets)


def encode_splits(config: TrainConfig, task: Task, encoder: TextEncoder, train_data, eval_data, say) -> tuple:
    """(train, dev) encoded; with --long-text chunk, every window of a training text is a row of its own and dev
    texts are scored with their windows' logits averaged, as the artifact will read them."""
    long_text = LongText(config.long_text)  # the artifact's default stride and window cap
    train_set = task.encode_training(encoder, train_data, long_text)
    eval_set = task.encode_read(encoder, eval_data, long_text)
    if len(train_set.ids) != len(train_data):
        say(f"{len(train_data)} training texts read as {len(train_set.ids)} windows of {encoder.max_length} tokens")
    for source in config.distill_unlabelled:
        more = task.encode_unlabelled(encoder, task.load_unlabelled(source, text_column=config.text_column), long_text)
        say(f"{source}: {len(more.ids)} unlabelled rows, learnt from the teacher's answers alone")
        train_set = Encoded(
            train_set.ids + more.ids, train_set.type_ids + more.type_ids, train_set.targets + more.targets
        )
    return train_set, eval_set


def trim_training_vocabulary(tokenizer_json: str, config: TrainConfig, task: Task, train_data, eval_data, say):
    """--trim-vocab: keep the pieces the training and dev texts produce (plus --trim-keep scripts) *before*
    fine-tuning, so the word embeddings are small enough to train (e5: 250,002 rows -> ~27k for Chinese reviews)."""
    from ..modeling.vocabulary import plan_trim, trim_tokenizer

    coverage, pretokenized = [], False
    for data in (train_data, eval_data):
        rows, pretokenized = task.tokenizer_inputs(data)
        coverage += rows
    trim = plan_trim(tokenizer_json, coverage, pretokenized=pretokenized, keep_scripts=tuple(config.trim_keep))
    say(f"vocabulary trimmed before training: {trim.original_size:,} -> {len(trim.keep):,} pieces")
    return trim_tokenizer(tokenizer_json, trim), trim


def write_trim(path: Path, trim) -> None:
    path.write_text(json.dumps({"original_size": trim.original_size, "keep": trim.keep.tolist()}), encoding="utf-8")


def read_trim(path: Path):
    """The Trim a --trim-vocab run saved (None for runs without one); plain JSON, never a pickle."""
    from ..modeling.vocabulary import Trim

    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    keep = np.asarray(record["keep"], dtype=np.int64)
    if keep.ndim != 1 or not len(keep) or (np.diff(keep) <= 0).any() or keep[0] < 0:
        raise InputError(f"{path} is not a vocabulary trim this run wrote; start again without --resume.")
    return Trim(keep, int(record["original_size"]))
