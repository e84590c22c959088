"""`edgebert bench`: latency, cold start, memory and drift side by side; history and regression checks."""

from __future__ import annotations

import sys
from pathlib import Path

from ..bench.config import BenchConfig
from ..core.errors import InputError
from .options import add_columns, config_from_args, config_option, default_of


def add_bench(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="latency and accuracy drift, side by side",
        description="Benchmark artifacts on this CPU: interleaved latency per shape, real-text latency, cold start, "
        "memory, and accuracy drift against a reference. Needs torch only when --reference is a training checkpoint.",
    )
    p.add_argument("artifacts", nargs="*", type=Path, metavar="ARTIFACT")
    p.add_argument("--reference", type=Path, help="checkpoint or fp32 artifact to compare against (drift, speed-up)")
    p.add_argument("--data", help="labelled data for real-text latency and accuracy drift (file or bundled name)")
    shapes = ",".join(f"{b}x{t}" for b, t in default_of(BenchConfig, "shapes"))
    p.add_argument("--shapes", help=f"BATCHxTOKENS list (default: {shapes})")
    p.add_argument("--threads", type=int, help="threads for every variant (default: CPUs this process may use)")
    config_option(p, "--rounds", BenchConfig, "rounds", "interleaved rounds", type=int)
    config_option(p, "--seconds", BenchConfig, "seconds_per_round", "time per variant per round", type=float)
    p.add_argument("--out", type=Path, help="write report.json, report.md, flips.jsonl and plots here")
    p.add_argument("--history", type=Path, help="append this run's summary to a JSONL history file")
    p.add_argument(
        "--compare",
        type=Path,
        metavar="HISTORY",
        help="compare the latest run in HISTORY to earlier ones; exit 1 on regression",
    )
    p.add_argument(
        "--max-slowdown", type=float, default=0.10, help="with --compare: allowed p50 increase (default: 0.10)"
    )
    p.add_argument(
        "--max-drop", type=float, default=0.5, help="with --compare: allowed accuracy drop in points (default: 0.5)"
    )
    p.add_argument("--no-cold-start", action="store_true", help="skip the fresh-process cold-start probe")
    p.add_argument(
        "--idle",
        type=float,
        metavar="RATE",
        help="instead: CPU used per request when called RATE times a second, worker-thread spinning on vs off",
    )
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--quiet", action="store_true")
    add_columns(p)
    p.set_defaults(run=run_bench)


def run_bench(args) -> int:
    from ..bench.report import append_history, markdown, write_report
    from ..bench.run import parse_shapes
    from ..bench.run import run_bench as run_benchmark

    if args.compare:
        return _compare(args)
    if not args.artifacts:
        raise InputError("Name at least one ARTIFACT to benchmark (or pass --compare HISTORY).")
    if args.idle is not None:
        return _run_idle(args)
    from ..core.files import check_not_an_input, check_writable

    if args.out:
        check_writable(args.out, args.force, inputs=(*args.artifacts, args.data))
    if args.history:
        check_not_an_input(args.history, (*args.artifacts, args.data), flag="--history")
    data = None
    if args.data:
        from ..data.load import load_dataset

        data = load_dataset(args.data, split="dev", text_column=args.text_column, label_column=args.label_column)
    config = config_from_args(
        BenchConfig,
        args,
        shapes=parse_shapes(args.shapes) if args.shapes else None,
        cold_start=False if args.no_cold_start else None,
    )
    report = run_benchmark(args.artifacts, config, reference=args.reference, data=data, progress=not args.quiet)
    print(markdown(report))
    if args.out:
        write_report(report, args.out, force=args.force)
        print(f"report written to {args.out}")
    if args.history:
        append_history(args.history, report)
    return 0


def _compare(args) -> int:
    from ..bench.report import compare_history, read_history

    if not 0 <= args.max_slowdown < 1:
        raise InputError(
            f"--max-slowdown is a fraction of the earlier p50: 0.10 allows 10% slower; got {args.max_slowdown}."
        )
    table, regressions = compare_history(
        read_history(args.compare), max_slowdown=args.max_slowdown, max_accuracy_drop=args.max_drop
    )
    print(table)
    for line in regressions:
        print(f"REGRESSION: {line}", file=sys.stderr)
    return 1 if regressions else 0


def _run_idle(args) -> int:
    import json

    from ..bench.idle import IdleConfig, format_idle, measure_idle

    config = IdleConfig(
        rate=args.idle, seconds=args.seconds_per_round or 5.0, rounds=args.rounds or 2, threads=args.threads
    )
    for artifact in args.artifacts:
        result = measure_idle(artifact, config)
        print(format_idle(result))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"idle-{artifact.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0
