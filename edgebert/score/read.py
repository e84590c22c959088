"""Inputs to rows. A row that cannot be read becomes a reject with its reason; nothing is dropped silently.

Row positions count every row of every input in order (rejects included), so outputs and rejects together
account for the whole input. Plain-text lines split on \\n / \\r\\n only; blank lines are not rows.
"""

from __future__ import annotations

import csv
import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError
from ..core.unicode_text import valid_unicode

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class Row:
    position: int
    id: str
    text: str
    pair: str | None = None  # the second text, for models trained on pairs (--pair-column)


@dataclass(frozen=True)
class Reject:
    position: int
    source: str  # PATH:LINE
    reason: str


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files and globs (`logs/*.jsonl`, `data/**/*.csv`), in the order given, each file once."""
    paths: list[Path] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matched = sorted(glob.glob(pattern, recursive=True))
            files = [Path(m) for m in matched if Path(m).is_file()]
            if not files:
                raise InputError(f"--input {pattern} matches no file.")
        else:
            path = Path(pattern)
            if not path.exists() or path.is_dir():
                raise InputError(f"--input {pattern}: no such file (use a glob like '{pattern}/*.jsonl' for a folder).")
            files = [path]
        paths += [p for p in files if p not in paths]
    if not paths:
        raise InputError("Give at least one --input file or glob.")
    return paths


def check_columns(paths: list[Path], text_column: str, pair_column: str | None) -> None:
    """Refuse, before any work, inputs the readers cannot read as asked: a table without the named columns, or
    --pair-column on plain text. `read_rows` relies on it."""
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            header = _header(_csv_reader(path, TABLE_SUFFIXES[suffix]), path) or []
            for name, flag in ((text_column, "--text-column"), (pair_column, "--pair-column")):
                if name and name not in header:
                    raise InputError(f"{path} has no column '{name}' (columns: {header}); pass {flag} NAME.")
        elif suffix not in JSON_SUFFIXES and pair_column:
            raise InputError(f"{path} is plain text, one text per line: --pair-column needs JSONL, CSV or TSV.")


def read_rows(
    paths: list[Path], text_column: str = "text", id_column: str | None = None, pair_column: str | None = None
) -> Iterator[Row | Reject]:
    columns = (text_column, id_column, pair_column)
    position = 0
    for path in paths:
        suffix = path.suffix.lower()
        if suffix in JSON_SUFFIXES:
            items = _jsonl(path, columns)
        elif suffix in TABLE_SUFFIXES:
            items = _table(path, TABLE_SUFFIXES[suffix], columns)
        else:
            items = _lines(path)
        for line, text_or_reason, row_id, pair in items:
            source = f"{path}:{line}"
            if row_id is _REJECT:
                yield Reject(position, source, text_or_reason)
            else:
                yield Row(position, row_id if row_id is not None else source, text_or_reason, pair)
            position += 1


_REJECT = object()  # marks (line, reason, _REJECT) items from the per-format readers


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None, reason) per line; bytes are decoded per line so one bad line is one reject."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror}.") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                yield number, raw.decode("utf-8"), ""
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 (byte {exc.start}: {exc.reason})"


def _jsonl(path: Path, columns: tuple):
    text_column = columns[0]
    for line, content, reason in _decoded_lines(path):
        if content is None:
            yield line, reason, _REJECT, None
            continue
        if not content.strip():
            continue
        try:
            row = json.loads(content)
        except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or an integer over 4,300 digits
            problem = "nested too deeply" if isinstance(exc, RecursionError) else getattr(exc, "msg", str(exc)[:120])
            yield line, f"invalid JSON ({problem})", _REJECT, None
            continue
        if not isinstance(row, dict):
            yield line, f"a JSON {type(row).__name__}, not an object with a '{text_column}' field", _REJECT, None
            continue
        yield (line, *_fields(row, columns))


def _csv_reader(path: Path, delimiter: str):
    csv.field_size_limit(1 << 30)
    lines = ((content if content is not None else "\udcff") + "\n" for _, content, _ in _decoded_lines(path))
    return csv.reader(lines, delimiter=delimiter, strict=True)


def _header(reader, path: Path) -> list[str] | None:
    """The first row of a table (None for an empty file)."""
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise InputError(f"{path}:1: malformed header ({exc}).") from None


def _table(path: Path, delimiter: str, columns: tuple):
    reader = _csv_reader(path, delimiter)
    header = _header(reader, path)  # its columns were checked by check_columns
    if header is None:
        return
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(
                f"{path}:{start}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({exc}); a quote opened and "
                "never closed swallows the rows after it. Fix the quoting near that line."
            ) from None
        line = start
        if not any(values):
            continue
        if any("\udcff" in v for v in values):
            yield line, "not UTF-8", _REJECT, None
        elif len(values) != len(header):
            yield line, f"{len(values)} fields, the header has {len(header)}", _REJECT, None
        else:
            yield (line, *_fields(dict(zip(header, values, strict=True)), columns))


def _lines(path: Path):
    for line, content, reason in _decoded_lines(path):
        if content is None:
            yield line, reason, _REJECT, None
        elif content.strip():
            yield line, content.strip(), None, None


def _fields(row: dict, columns: tuple) -> tuple[str, object, str | None]:
    """(text, id or None, pair or None) of a row, or (reason, _REJECT, None)."""
    text_column, id_column, pair_column = columns
    text = row.get(text_column)
    if text is None:
        return f"no '{text_column}' field (pass --text-column NAME)", _REJECT, None
    if not isinstance(text, str):
        return f"'{text_column}' is {type(text).__name__}, not a string", _REJECT, None
    pair = None
    if pair_column is not None:
        pair = row.get(pair_column)
        if not isinstance(pair, str):
            return f"no string '{pair_column}' field (--pair-column)", _REJECT, None
    text, pair = valid_unicode(text), None if pair is None else valid_unicode(pair)
    if id_column is None:
        return text, None, pair
    if row.get(id_column) in (None, ""):
        return f"no '{id_column}' value (--id-column)", _REJECT, None
    return text, valid_unicode(str(row[id_column])), pair
