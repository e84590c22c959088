"""Option groups shared by several commands, and the one rule for defaults: a flag left out is None, and the
stage's config dataclass supplies the default (shown in --help from that dataclass, never restated here)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any


def default_of(config_class: type, name: str) -> Any:
    field = {f.name: f for f in fields(config_class)}[name]
    return field.default_factory() if field.default is MISSING else field.default


def config_option(
    parser: argparse.ArgumentParser, flag: str, config_class: type, name: str, help: str = "", **kwargs: Any
) -> None:
    """A flag for `config_class.name`: default None (the dataclass decides), its default shown in --help."""
    shown = default_of(config_class, name)
    if kwargs.get("action") is None and "choices" not in kwargs:
        kwargs.setdefault("metavar", flag.lstrip("-").upper().replace("-", "_"))
    text = f"{help} (default: {shown})" if help else f"default: {shown}"
    parser.add_argument(flag, dest=name, default=None, help=text.replace("%", "%%"), **kwargs)


def config_from_args(config_class: type, args: argparse.Namespace, **extra: Any):
    """`config_class` built from the flags that were given (not None), plus `extra`."""
    given = {f.name: getattr(args, f.name) for f in fields(config_class) if getattr(args, f.name, None) is not None}
    given.update({k: v for k, v in extra.items() if v is not None})  # already-parsed values win over raw flags
    return config_class(**given)


def add_columns(parser: argparse.ArgumentParser, *, labels: bool = True, pairs: bool = False) -> None:
    parser.add_argument("--text-column", default="text", help="column holding the text (JSONL/CSV/TSV)")
    if labels:
        parser.add_argument("--label-column", default="label", help="column holding the label")
    if pairs:
        parser.add_argument("--text-pair-column", default="text_pair", help="second text of a pair, used when present")


def columns(args: argparse.Namespace) -> dict[str, str]:
    names = ("text_column", "label_column", "text_pair_column")
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def add_signing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sign",
        type=Path,
        metavar="KEY",
        help="sign the result with this elliptic-curve private key (PEM) into model.sig; apps then load it with the "
        "public key (needs edgebert[sign])",
    )


def check_signing(args: argparse.Namespace) -> None:
    """Before any slow work: the key reads as a private key and the signing library is installed."""
    if getattr(args, "sign", None) is not None:
        from ..core.errors import require
        from ..core.signature import check_key

        check_key(args.sign, "private")
        require("model_signing", "sign")


def sign_output(args: argparse.Namespace) -> None:
    if getattr(args, "sign", None) is not None:
        from ..core.signature import sign_artifact

        print(f"signed     {sign_artifact(args.out, args.sign)}")


def add_output(parser: argparse.ArgumentParser, what: str, *, required: bool = True) -> None:
    parser.add_argument("--out", required=required, type=Path, help=f"{what} to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def add_long_text(parser: argparse.ArgumentParser, *, shape: bool) -> None:
    """--long-text, and with `shape` the window settings an export records (--stride, --max-windows, --aggregate)."""
    from ..core.artifact import AGGREGATIONS, LONG_TEXT_POLICIES, LongText

    parser.add_argument(
        "--long-text",
        choices=LONG_TEXT_POLICIES,
        help="texts longer than the model: 'truncate' (read the first max-length tokens) or 'chunk' (read all of "
        "it in overlapping windows, their logits averaged)"
        + (f" (default: {LongText.policy}; recorded in the artifact, every runtime applies it)" if shape else "")
        + ("" if shape else " (default: the artifact's policy)"),
    )
    if not shape:
        return
    parser.add_argument(
        "--stride", type=int, metavar="N", help="with --long-text chunk: tokens two windows share (default: a quarter)"
    )
    config_option(
        parser,
        "--max-windows",
        LongText,
        "max_windows",
        "with --long-text chunk: windows per text at most; past them the text is cut, and answers say so",
        type=int,
    )
    config_option(
        parser,
        "--aggregate",
        LongText,
        "aggregate",
        "with --long-text chunk: a text's logits from its windows': mean, or max per label",
        choices=AGGREGATIONS,
    )


def long_text_from_args(args: argparse.Namespace):
    """The LongText an export's flags describe (None: every flag left out)."""
    from ..core.artifact import LongText
    from ..core.errors import InputError

    shape = {"stride": args.stride, "max_windows": args.max_windows, "aggregate": args.aggregate}
    given = {k: v for k, v in shape.items() if v is not None}
    if given and args.long_text != "chunk":
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InputError(f"{flags} shape the windows of --long-text chunk; add --long-text chunk, or drop them.")
    return LongText(policy=args.long_text, **given) if args.long_text else None


def add_public_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key",
        type=Path,
        metavar="KEY",
        help="use the artifact only if it is signed (model.sig) by this public key's holder and unchanged since",
    )
