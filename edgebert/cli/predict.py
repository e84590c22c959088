"""`edgebert predict`: classify texts (or find entities) with an artifact. Torch-free."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import InputError
from ..core.jsonl import json_line
from .options import add_columns, add_long_text, add_public_key


def add_predict(commands) -> None:
    p = commands.add_parser(
        "predict",
        help="classify texts with an artifact (no torch needed)",
        description="Classify texts with an exported artifact. Reads stdin (one text per line) when no TEXT or --file is given.",
    )
    p.add_argument("artifact", type=Path)
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="JSONL/CSV/TSV (uses --text-column) or plain text, one text per line")
    add_columns(p, labels=False)
    p.add_argument(
        "--pair-column",
        metavar="NAME",
        help="with --file: the column holding each text's pair, for models trained on pairs (default: text_pair)",
    )
    p.add_argument("--top-k", type=int, metavar="K", help="with --json: rank the K best labels (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per line, with every label's score")
    p.add_argument("--threads", type=int, help="inference threads (default: CPUs this process may use)")
    add_long_text(p, shape=False)
    add_public_key(p)
    p.set_defaults(run=run_predict)


def run_predict(args) -> int:
    from ..runtime import Classifier

    if args.top_k is not None and args.top_k < 1:
        raise InputError("--top-k must be at least 1.")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1.")
    texts, pairs = _texts(args)
    from ..runtime import TokenClassifier, front_door

    if front_door(args.artifact) is TokenClassifier:
        return _predict_tokens(args, texts)
    classifier = Classifier.load(args.artifact, threads=args.threads, public_key=args.public_key)
    predictions = classifier.predict(texts, pairs, top_k=args.top_k, long_text=args.long_text)
    for text, prediction in zip(texts, predictions, strict=True):
        if args.json:
            ranked = [{"label": s.label, "score": s.score} for s in prediction.top]
            record = {"text": text, "label": prediction.label, "score": prediction.score, "scores": prediction.scores}
            read = {"windows": prediction.windows, "truncated": prediction.truncated}
            print(json_line({**record, "labels": list(prediction.labels), "top": ranked, **read}))
        else:  # the labels given: the best one, or every label over its threshold (multi-label; "-" for none)
            given = ",".join(prediction.labels) or "-"
            preview = text.replace("\n", " ")
            print(f"{given}\t{prediction.score:.4f}\t{preview[:80]}")
    if not args.json:
        _say_what_was_cut(predictions, classifier.long_text_policy(args.long_text).policy)
    return 0


def _say_what_was_cut(predictions: list, long_text: str) -> None:
    """Plain output has no room per line: one note on stderr when some texts were not read to the end."""
    cut = sum(p.truncated for p in predictions)
    if cut:
        how = "past the last window" if long_text == "chunk" else "at max_length (--long-text chunk reads them whole)"
        print(f"note: {cut} of {len(predictions)} texts were cut {how}", file=sys.stderr)


def _texts(args) -> tuple[list[str], list[str] | None]:
    """(texts, pairs): the TEXT arguments, then --file's rows; stdin's lines when neither is given."""
    from ..data.text import load_file, text_lines

    texts, pairs = list(args.texts), None
    if args.pair_column and (not args.file or texts):
        raise InputError("--pair-column reads pairs from --file; give the texts and their pairs there only.")
    if args.file:
        data = load_file(
            Path(args.file),
            text_column=args.text_column,
            label_column=None,
            text_pair_column=args.pair_column or "text_pair",
        )
        if args.pair_column and data.pairs is None:
            raise InputError(f"{args.file} has no '{args.pair_column}' column; check --pair-column.")
        return texts + data.texts, data.pairs
    if texts:
        return texts, pairs
    if sys.stdin.isatty():
        raise InputError("No texts given: pass TEXT arguments, --file FILE, or pipe lines on stdin.")
    try:
        return text_lines(sys.stdin.buffer.read().decode("utf-8")), None
    except UnicodeDecodeError as exc:
        raise InputError(f"stdin is not UTF-8 text (byte {exc.start}: {exc.reason}); send UTF-8.") from None


def _predict_tokens(args, texts: list[str]) -> int:
    """Token artifacts: entities per text (JSON: every word's label and offsets too)."""
    from dataclasses import asdict

    from ..runtime import TokenClassifier

    tagger = TokenClassifier.load(args.artifact, threads=args.threads, public_key=args.public_key)
    for text in texts:
        entities = tagger.entities(text, long_text=args.long_text)
        if args.json:
            words = [asdict(w) for w in tagger.predict(text, long_text=args.long_text)]
            print(json_line({"text": text, "entities": [asdict(e) for e in entities], "words": words}))
        else:
            found = "  ".join(f"{e.text}/{e.label}[{e.start}:{e.end}]" for e in entities) or "(no entities)"
            print(f"{found}\t{text.replace(chr(10), ' ')[:80]}")
    return 0
