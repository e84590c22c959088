"""Labelled text datasets from user files (JSONL, CSV, TSV, plain text), and how train and dev are chosen. Torch-free.

A dataset is two parallel lists, texts and labels (strings). Label ids are assigned by `LabelSet`,
which is saved with every checkpoint and artifact so ids never drift between stages.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.unicode_text import valid_unicode


@dataclass
class TextDataset:
    texts: list[str]
    labels: list[str] | list[tuple[str, ...]] | None  # None: unlabelled; tuples: multi-label (any number, none too)
    source: str = ""
    pairs: list[str] | None = None  # second text of each pair, for sentence-pair tasks

    def subset(self, rows: Sequence[int], source: str) -> TextDataset:
        pick = lambda xs: None if xs is None else [xs[i] for i in rows]  # noqa: E731
        return TextDataset(pick(self.texts), pick(self.labels), source, pick(self.pairs))

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class LabelSet:
    names: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> LabelSet:
        unique = sorted(set(labels))
        if len(unique) < 2:
            raise InputError(f"Training needs at least 2 distinct labels, found {unique}.")
        return cls(tuple(unique))

    def encode(self, labels: Sequence[str], source: str = "data") -> list[int]:
        index = {name: i for i, name in enumerate(self.names)}
        unknown = sorted(set(labels) - index.keys())
        if unknown:
            raise InputError(
                f"{source} has labels the model does not know: {unknown[:5]}. "
                f"The model's labels are {list(self.names)}; fix the file or retrain with these labels."
            )
        return [index[label] for label in labels]


def load_file(
    path: Path, *, text_column: str = "text", label_column: str | None = "label", text_pair_column: str = "text_pair"
) -> TextDataset:
    if not path.exists() or path.is_dir():  # not is_file(): /dev/stdin and named pipes are welcome
        raise InputError(f"Data file not found: {path}.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".json"):
            rows = _read_jsonl(path)
        elif suffix in (".csv", ".tsv"):
            rows = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".txt", ""):
            texts = text_lines(path.read_bytes().decode("utf-8"))
            if not texts:
                raise InputError(f"{path} holds no texts (it is empty or blank).")
            return TextDataset(texts, None, str(path))
        else:
            raise InputError(f"Unsupported data file type '{suffix}' ({path}); use .jsonl, .csv, .tsv or .txt.")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); re-save it as UTF-8.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    if not rows:
        raise InputError(f"{path} holds no rows.")
    return _columns(rows, path, text_column, label_column, text_pair_column)


def text_lines(text: str) -> list[str]:
    """One text per line, lines ended by \\n or \\r\\n only. str.splitlines() would also split on U+2028, form
    feeds, \\x1c-\\x1e and \\x85, turning one text into several predictions. Blank lines are skipped."""
    lines = (line.removesuffix("\r").strip() for line in text.split("\n"))
    return [line for line in lines if line]


def _read_delimited(path: Path, delimiter: str) -> list[dict]:
    """CSV/TSV rows; a malformed file (e.g. a quote never closed) is an error with its line, never merged rows."""
    csv.field_size_limit(MAX_FIELD_CHARS)  # the default 131,072 refuses long documents
    kind = "TSV" if delimiter == "\t" else "CSV"
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter, strict=True)
        rows, line = [], 1
        try:
            for row in reader:
                rows.append(row)
                line = reader.line_num + 1  # where the next row starts
        except csv.Error as exc:
            raise InputError(
                f"{path}:{line}: malformed {kind} ({exc}); "
                "check the quoting near that line (a quote opened and never closed swallows the rows after it)."
            ) from None
    width = len(reader.fieldnames or [])
    for i, row in enumerate(rows, 2):
        if None in row or len(row) != width or any(v is None for v in row.values()):
            raise InputError(
                f"{path}: data row {i - 1} has a different number of fields than the header ({width}); "
                "check its quoting and delimiters."
            )
    return rows


MAX_FIELD_CHARS = 1 << 30  # fields are limited by memory, not by the csv module's default


def read_jsonl_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"Data file not found: {path}.")
    try:
        return _read_jsonl(path)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason}); re-save it as UTF-8.") from exc


def stratified_split(data: TextDataset, dev_fraction: float, seed: int) -> tuple[TextDataset, TextDataset]:
    """Hold out `dev_fraction` of every label (at least one text each), for data that comes as one file."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(require_labels(data)):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    train_rows, dev_rows = [], []
    for label in sorted(by_label):
        rows = by_label[label]
        if len(rows) < 2:
            raise InputError(f"{data.source}: label '{label}' has 1 example; a stratified dev split needs 2 per label.")
        rng.shuffle(rows)
        n_dev = max(1, round(len(rows) * dev_fraction))
        dev_rows += rows[:n_dev]
        train_rows += rows[n_dev:]
    return (
        data.subset(sorted(train_rows), f"{data.source} (train part)"),
        data.subset(sorted(dev_rows), f"{data.source} (held-out {dev_fraction:.0%})"),
    )


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or an integer over 4,300 digits
                raise InputError(f"{path}:{line_no} is not valid JSON ({_json_problem(exc)}).") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no} must be a JSON object with a text field.")
            rows.append(row)
    return rows


def _columns(rows: list[dict], path: Path, text_column: str, label_column: str | None, pair_column: str) -> TextDataset:
    columns = list(rows[0].keys())
    if text_column not in columns:
        hint = " For token classification (tokens/tags columns) pass --task token." if "tokens" in columns else ""
        raise InputError(f"{path} has no column '{text_column}' (columns: {columns}); pass --text-column NAME.{hint}")
    has_labels = label_column is not None and label_column in columns
    has_pairs = pair_column in columns
    texts, labels, pairs = [], [], []
    for i, row in enumerate(rows):
        text = row.get(text_column)
        if not isinstance(text, str):
            raise InputError(f"{path} row {i + 1}: '{text_column}' must be a string, got {text!r:.40}.")
        texts.append(valid_unicode(text))
        if has_pairs:
            pair = row.get(pair_column)
            if not isinstance(pair, str):
                raise InputError(f"{path} row {i + 1}: '{pair_column}' must be a string, got {pair!r:.40}.")
            pairs.append(valid_unicode(pair))
        if has_labels:
            labels.append(_label(row.get(label_column), path, i, label_column))
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        raise InputError(
            f"{path}: column '{label_column}' mixes single labels and lists; for multi-label data make every "
            'label a list (["sport"], [] for none).'
        )
    return TextDataset(texts, labels if has_labels else None, str(path), pairs if has_pairs else None)


def _label(value, path: Path, i: int, column: str) -> str | tuple[str, ...]:
    """A label as a name (ints become "0", "1", ... and round-trip as names), or a multi-label row as a tuple."""
    if isinstance(value, list):
        if not all(isinstance(v, str | int) and not isinstance(v, bool) and str(v) for v in value):
            raise InputError(f"{path} row {i + 1}: every label in the list '{column}' must be a non-empty name.")
        return tuple(sorted({str(v) for v in value}))
    if value is None or value == "":
        raise InputError(f"{path} row {i + 1}: empty label in column '{column}'.")
    if isinstance(value, dict | bool):
        raise InputError(
            f"{path} row {i + 1}: label {value!r:.40} in column '{column}' is not a name or a whole number."
        )
    return str(value)


def require_labels(dataset: TextDataset, label_column: str = "label") -> list[str]:
    if dataset.labels is None:
        raise InputError(f"{dataset.source} has no label column '{label_column}'; pass --label-column NAME.")
    return dataset.labels


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return getattr(exc, "msg", None) or str(exc).split(";")[0][:120]
