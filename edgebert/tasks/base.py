"""The task interface: what every task answers for the stages. Implementations: sequence.py, token.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..core.artifact import LongText
from ..core.cpu import usable_cpu_count
from ..core.errors import InputError
from ..core.measurements import Evaluation
from ..data.text import LabelSet
from ..data.tokens import IGNORE, UNLABELLED
from ..runtime.backends import Backend, open_backend
from ..runtime.tokenization import Batch, TextEncoder
from ..runtime.windows import Windows, text_logits

EVAL_BOOTSTRAP = 2000  # resamples of the eval rows for the export's intervals (a few ms on thousands of rows)


@dataclass
class Encoded:
    ids: list[list[int]]
    type_ids: list[list[int]]
    targets: list  # sequence: one label id per row; token: one id (or IGNORE) per token
    word_ids: list | None = None  # token task: token -> word index
    windows: Windows | None = None  # long texts read in windows: rows are windows, targets are per text
    aggregate: str = "mean"  # how a text's window logits become its own (core/artifact.LongText)


class Task:
    """One kind of classification. Subclasses fill in every method; see sequence.py and token.py."""

    name: ClassVar[str]  # as written in checkpoints and manifests (core/artifact.TASKS)
    kind: ClassVar[str]  # what such a model is, in words
    score_name: ClassVar[str]  # the dev score training selects on
    metric: ClassVar[str]  # what --max-drop is measured in, as said to the user
    data_unit: ClassVar[str]  # what one eval row is: "texts" or "sentences"
    parity_unit: ClassVar[str]  # what one row of parity logits is: "texts" or "tokens"
    hf_task: ClassVar[str]  # optimum's exporter task
    hf_auto_class: ClassVar[str]  # the transformers Auto class of its head
    hf_problem_type: ClassVar[str | None] = None  # config.problem_type, where transformers distinguishes it
    tunable: ClassVar[bool]  # `export --tune` can time and pick its candidates
    poolings: ClassVar[tuple[str, ...]]  # sentence-vector options it accepts (train --pooling)
    headline_keys: ClassVar[tuple[str, ...]]  # the dev scores a checkpoint records and the CLI prints
    headline_key: ClassVar[str]  # the one number a model is summarised by (distill prints student vs teacher)
    trains_on_windows: ClassVar[bool] = True  # --long-text chunk: each window of a long text is a training row
    distils_ensembles: ClassVar[bool] = False  # --ensemble: a fresh model learns artifacts' mean distribution
    truncated_words = 0  # words beyond max_length (token tasks count them while encoding)

    def __init__(self, labels: LabelSet) -> None:
        self.labels = labels

    @property
    def num_labels(self) -> int:
        return len(self.labels.names)

    def headline(self, metrics: dict[str, Any]) -> dict[str, float]:
        return {k: float(metrics[k]) for k in self.headline_keys}

    @classmethod
    def describe(cls, metrics: dict[str, Any]) -> str:
        """The headline scores as the CLI prints them."""
        return ", ".join(f"{k.replace('_', '-')} {metrics[k]:.4f}" for k in cls.headline_keys)

    @classmethod
    def from_meta(cls, meta) -> Task:
        """The task a checkpoint (CheckpointMeta) was trained as."""
        return cls(LabelSet(tuple(meta.labels)))

    # ---- training
    def loss(self, torch, logits, targets, class_weights=None):
        """The training loss of (B, K) or (B, T, K) logits against `batch_targets` (IGNORE positions skipped)."""
        return torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), weight=class_weights, ignore_index=IGNORE
        )

    def distillation_loss(self, torch, student, teacher, targets, *, temperature, alpha, class_weights=None):
        """A student's loss (train/distill.py): alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) +
        (1 - alpha) * cross entropy against the labels. student, teacher: (B, K) or (B, T, K) logits; targets (B,) or
        (B, T): IGNORE where nothing is compared, UNLABELLED where the teacher's answer is all there is."""
        k = student.shape[-1]
        student, teacher, flat_targets = student.reshape(-1, k), teacher.reshape(-1, k), targets.reshape(-1)
        compared = flat_targets != IGNORE  # rows (or tokens) the teacher's answer is learnt on
        labelled = compared & (flat_targets != UNLABELLED)
        hard = student.new_zeros(())  # a batch of unlabelled rows only has no hard term (cross entropy would be NaN)
        if labelled.any():
            hard = torch.nn.functional.cross_entropy(student[labelled], flat_targets[labelled], weight=class_weights)
        soft = torch.nn.functional.kl_div(
            torch.nn.functional.log_softmax(student[compared] / temperature, dim=-1),
            torch.nn.functional.log_softmax(teacher[compared] / temperature, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        return alpha * temperature**2 * soft + (1 - alpha) * hard

    def checkpoint_extras(self, dev_metrics: dict[str, Any]) -> dict[str, Any]:
        """What the saved checkpoint records beside its weights that the task decided on dev, from the metrics
        `evaluate` gave for it (none by default)."""
        return {}

    def decision_thresholds(self) -> list[float] | None:
        """Per-label thresholds the runtime decides with (the manifest's `thresholds`); None: argmax."""
        return None

    # ---- data
    @classmethod
    def from_training_data(cls, train_data, label_column: str = "label") -> Task:
        raise NotImplementedError

    @staticmethod
    def load_data(source: str, split: str, **columns: str):
        raise NotImplementedError

    @staticmethod
    def load_training(data: str, eval_data: str | None, *, seed: int, say, **columns: str) -> tuple:
        """(train, dev) for `edgebert train`: --eval when given, else the bundled dataset's dev split."""
        raise NotImplementedError

    @staticmethod
    def load_unlabelled(source: str, **columns: str):
        """Texts (or word lists) whose labels, if any, are not read: e.g. export --trim-vocab's coverage."""
        raise NotImplementedError

    def encode(self, encoder: TextEncoder, data) -> Encoded:
        raise NotImplementedError

    def encode_read(self, encoder: TextEncoder, data, long_text: LongText) -> Encoded:
        """`encode`, each text read as the artifact will read it: with long_text "chunk", rows are windows and
        `text_logits` turns their logits back into one row per text. Default: as `encode` (sentences given as words
        are scored as encoded; the runtime's windows stitch raw texts)."""
        return self.encode(encoder, data)

    def encode_training(self, encoder: TextEncoder, data, long_text: LongText) -> Encoded:
        """`encode` for training: with long_text "chunk", every window of a long text is a row with the text's
        target (the model learns from all of the text, not only from its start)."""
        read = self.encode_read(encoder, data, long_text)
        if read.windows is None:
            return read
        owners = read.windows.owners
        return Encoded(read.ids, read.type_ids, [read.targets[i] for i in owners])

    def encode_unlabelled(self, encoder: TextEncoder, data, long_text: LongText) -> Encoded:
        """Rows a student learns from its teacher alone (distill --unlabelled): read as training reads texts, every
        target UNLABELLED."""
        raise InputError(f"distill --unlabelled takes text classifiers' texts; a '{self.name}' model needs labels.")

    @staticmethod
    def text_logits(rows: np.ndarray, encoded: Encoded) -> np.ndarray:
        """Logits per text from logits per row (the same, unless the texts were read in windows)."""
        return rows if encoded.windows is None else text_logits(rows, encoded.windows, encoded.aggregate)

    @staticmethod
    def encode_inputs(encoder: TextEncoder, data) -> tuple[list, list]:
        """(ids, type ids) the model sees for `data`, labels not needed."""
        raise NotImplementedError

    @staticmethod
    def tokenizer_inputs(data) -> tuple[list, bool]:
        """(what the tokenizer is given for `data`, whether it is already split into words)."""
        raise NotImplementedError

    def class_counts(self, encoded: Encoded) -> np.ndarray:
        raise NotImplementedError

    def batch_targets(self, encoded: Encoded, batch: Batch) -> np.ndarray:
        raise NotImplementedError

    # ---- logits
    def logits(
        self, engine: Backend, encoder: TextEncoder, ids: list, type_ids: list, batch_size: int = 32
    ) -> np.ndarray:
        """(N, K) per text, or (total tokens, K) for a token task: the rows parity and budgets compare."""
        raise NotImplementedError

    def golden_logits(self, engine: Backend, encoder: TextEncoder, ids: list, type_ids: list) -> list:
        """Per text, one per call (as the runtime replays them): what the manifest's golden sample stores."""
        raise NotImplementedError

    def model_logits(self, backend: str, path: Path, encoder: TextEncoder, ids: list, type_ids: list) -> np.ndarray:
        """`logits` from a saved graph (an fp32 reference: one call per batch is how the runtime runs it too)."""
        return self.logits(open_backend(backend, path, usable_cpu_count()), encoder, ids, type_ids)

    # ---- scores
    def evaluate(self, backend, encoder: TextEncoder, encoded: Encoded, batch_size: int) -> dict[str, Any]:
        """Dev metrics of a model (torch or ONNX) on encoded data; `score_name` among them."""
        raise NotImplementedError

    def budget_score(self, encoded: Encoded) -> Callable[[np.ndarray], float]:
        """score(logits of every eval row) -> the metric --max-drop is in, as a fraction."""
        raise NotImplementedError

    def budget_interval(self, encoded: Encoded) -> Callable[[np.ndarray, np.ndarray], list[float]]:
        """interval(reference logits, candidate logits) -> 95% paired-bootstrap interval of the drop, in points."""
        raise NotImplementedError

    def changed_answers(self, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """(N,) bool: which texts `candidate`'s logits answer otherwise than `reference`'s (bench's agreement)."""
        raise NotImplementedError

    def answer(self, logits: np.ndarray) -> Any:
        """What one text's logits answer, as a user reads it (a label, or the labels given)."""
        raise NotImplementedError

    def changed_labels(self, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """(N,) bool: which unlabelled texts get another answer from `candidate` than from `reference` (export
        --agreement: the share bounds how far the task's metric can move)."""
        raise InputError(
            f"--agreement bounds accuracy by the share of changed labels, which holds for single-label sequence "
            f"classifiers; this is a {self.name} model: drop --agreement (the budget is then checked on --eval)."
        )

    def budget_logits(self, run: Callable[[list, list], np.ndarray], encoded: Encoded, rows: np.ndarray | None):
        """The logits of `rows` (indices into `logits` rows, None: all) where run(ids, type_ids) computes logits."""
        raise NotImplementedError

    def artifact_evaluation(
        self,
        *,
        source: str,
        encoded: Encoded,
        candidate: Callable[[], np.ndarray],
        fp32_reference: np.ndarray | None,
        fp32_graph: Path | None,
        encoder: TextEncoder,
        candidate_engine: Callable[[], Backend],
    ) -> Evaluation:
        """The manifest's evaluation of a saved model and, when quantized, what changed against its fp32 graph.
        candidate(): its logits per text; candidate_engine(): the saved model opened as the runtime runs it."""
        raise NotImplementedError

    # ---- stage rules
    @classmethod
    def check_labels(cls, labels: list[str], where) -> None:
        """Raise ArtifactError when an imported model's labels cannot be this task's (`where`: the file naming them)."""

    def allows_light_last_layer(self, pooling: str) -> bool:
        """Whether the last layer may compute position 0 only (modeling/last_layer.py)."""
        return False

    def check_export(self, *, pooling: str, light_last_layer: bool, calibrated: bool, checkpoint: Path) -> None:
        """Raise InputError for export options this task cannot take."""
        raise NotImplementedError
