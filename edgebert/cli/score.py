"""`edgebert score`: classify a corpus (files or globs) into one ordered JSONL/Parquet output. Torch-free."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError
from ..score.config import ScoreConfig
from .options import add_public_key, config_from_args, config_option


def add_score(commands) -> None:
    p = commands.add_parser(
        "score",
        help="classify a corpus on all local cores, or on a Ray cluster",
        description="Classify every row of JSONL/CSV/TSV/plain-text files (or globs) with ARTIFACT. Output: one JSON "
        "line per row, in input order ({position, id, label, score}); unreadable rows go to OUT.rejects.jsonl with "
        "the reason. Interrupted runs resume where they stopped; the output is written atomically.",
    )
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")
    p.add_argument("--input", action="append", required=True, metavar="PATH", help="file or glob; repeat for more")
    p.add_argument("--output", type=Path, required=True, help="OUT.jsonl (or OUT.parquet, needs pyarrow)")
    config_option(
        p, "--workers", ScoreConfig, "workers", "worker processes (None: CPUs this process may use)", type=int
    )
    config_option(p, "--threads-per-worker", ScoreConfig, "threads_per_worker", "", type=int)
    config_option(p, "--shard-rows", ScoreConfig, "shard_rows", "rows per unit of work and of resume", type=int)
    config_option(p, "--batch-size", ScoreConfig, "batch_size", "rows per inference call", type=int)
    config_option(p, "--all-scores", ScoreConfig, "all_scores", "write every label's probability", action="store_true")
    config_option(p, "--text-column", ScoreConfig, "text_column", "column holding the text (JSONL/CSV/TSV)")
    config_option(p, "--id-column", ScoreConfig, "id_column", "column copied as 'id' (None: PATH:LINE)")
    config_option(
        p, "--pair-column", ScoreConfig, "pair_column", "column holding each text's pair (models trained on pairs)"
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on Ray Data: a local instance, or the cluster at ADDRESS (e.g. ray://head:10001); needs [ray]",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT, or drop an unfinished run's saved shards")
    p.add_argument("--quiet", action="store_true")
    add_public_key(p)
    p.set_defaults(run=run_score)


def run_score(args) -> int:
    from ..score.local import output_lock

    config = config_from_args(ScoreConfig, args)
    if args.public_key is not None:  # before any worker starts; each worker then checks every file's checksum
        from ..core.signature import verify_signature

        verify_signature(args.artifact, args.public_key)
    with output_lock(args.output):
        report = _score(args, config)
    return _report(report)


def _score(args, config):
    if args.ray is not None:
        from ..score.ray_job import score_ray

        report = score_ray(
            args.artifact,
            args.input,
            args.output,
            config,
            address=args.ray or None,
            force=args.force,
            progress=not args.quiet,
        )
    else:
        from ..score.local import score_local

        report = score_local(args.artifact, args.input, args.output, config, force=args.force, progress=not args.quiet)
    return report


def _report(report) -> int:
    resumed = f", {report.resumed_shards} of {report.shards} shards resumed" if report.resumed_shards else ""
    if report.recomputed_shards:
        resumed += f", {report.recomputed_shards} saved shards did not match their seal and were scored again"
    print(
        f"scored {report.rows} rows in {report.seconds:.1f}s ({report.rows_per_s:.1f} rows/s, {report.workers} "
        f"workers{resumed}) -> {report.output}"
    )
    if report.rejects:
        print(f"{report.rejects} rows could not be read -> {report.rejects_file} (with the reason for each)")
    if report.rejects and not report.rows:
        # every row refused is a mistake in the command (a wrong --text-column, say), not a result
        first = _first_reason(report.rejects_file)
        raise InputError(f"No row could be read (first reason: {first}); see {report.rejects_file}.")
    return 0


def _first_reason(rejects_file) -> str:
    import json

    try:
        with open(rejects_file, encoding="utf-8") as f:
            return json.loads(f.readline()).get("reason", "?")
    except (OSError, ValueError):
        return "unknown"
