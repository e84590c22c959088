"""The `edgebert` command. The only place that turns exceptions into messages and exit codes.

Each command's module imports its stage inside the run function, so `edgebert predict` never loads torch.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..core.errors import EdgebertError
from ..core.files import terminate_as_interrupt
from . import bench, bundle, encoders, export, predict, publish, score, serve, train, verify

COMMANDS = (
    train.add_adapt,
    train.add_train,
    train.add_distill,
    export.add_export,
    bundle.add_bundle,
    publish.add_publish,
    predict.add_predict,
    verify.add_verify,
    score.add_score,
    serve.add_serve,
    bench.add_bench,
    encoders.add_encoders,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebert", description="Fine-tune, export and run BERT text classifiers on CPUs."
    )
    parser.add_argument("--version", action="version", version=f"edgebert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "texts"):  # `predict ART --json "a text"`: texts may follow options
        cut = extra.index("--") if "--" in extra else len(extra)  # after "--", even "-x" is a text
        if unknown := [x for x in extra[:cut] if x.startswith("-")]:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.texts += extra[:cut] + extra[cut + 1 :]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if undecodable := [a for a in (argv if argv is not None else sys.argv[1:]) if _undecodable(a)]:
        # Python keeps bytes the locale cannot decode as surrogates; classifying or opening them would be wrong
        print(
            f"edgebert: error: argument {undecodable[0].encode('utf-8', 'surrogateescape')!r:.80} is not valid "
            "text in this locale; pass UTF-8 (and a UTF-8 locale, e.g. LC_ALL=C.UTF-8), or put texts in a --file.",
            file=sys.stderr,
        )
        return 2
    with terminate_as_interrupt() as termination:  # `kill` cleans up like Ctrl-C: no staging or temp dirs left
        try:
            return args.run(args) or 0
        except EdgebertError as exc:
            print(f"edgebert: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("edgebert: interrupted", file=sys.stderr)
            return 130
        except OSError as exc:  # the file system said no (a name too long, a directory, no space, no permission)
            where = f": {exc.filename}" if exc.filename else ""
            print(f"edgebert: error: {exc.strerror or exc}{where}. Check the path and try again.", file=sys.stderr)
            return 2
        except Exception:
            if termination.received:  # the interrupt surfaced wrapped in a library's own exception
                print("edgebert: interrupted", file=sys.stderr)
                return 130
            raise


def _undecodable(arg: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in arg)


def synopsis(width: int = 110) -> str:
    """Every command's usage line, as docs/cli.md shows it (a test keeps the two equal; `make docs` rewrites it)."""
    import os

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)  # argparse wraps usage lines at the terminal width
    try:
        parser = build_parser()
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return "\n".join(sub.format_usage().removeprefix("usage: ").strip() for sub in subparsers.choices.values())
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
