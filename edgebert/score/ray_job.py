"""The same scoring job on Ray Data, from a laptop's local Ray to a cluster (`--ray [ADDRESS]`).

Rows are read on the driver by read.py (so rejects are the same as locally, and `--input` paths need only exist
where the command runs, not on every node) and cut into the same shards as the local mode. Shards go to Ray Data
in passes of SHARDS_PER_PASS (so the driver holds one pass of rows, not the corpus), each scored by `map_batches`
with a callable class, one instance per actor (it loads and verifies the artifact once per pass, with intra-op
threads set to the actor's CPUs: Ray sets OMP_NUM_THREADS=1, which ONNX Runtime ignores). Each shard's lines are
written to OUT.parts/ exactly as a local worker writes them, so a run interrupted in either mode resumes in either
mode, and the final output is assembled by the same `finish`.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np

from ..core.errors import require
from .config import ScoreConfig
from .local import (
    ScoreReport,
    finish,
    part_is_done,
    part_path,
    parts_dir,
    prepare,
    rows_of,
    score_lines,
    shard_key,
    shards,
    write_part,
)
from .read import Reject, Row, read_rows


class ScoreActor:
    """Ray Data callable class: constructed once per actor, called once per batch of rows."""

    def __init__(self, artifact: str, threads: int, batch_size: int, all_scores: bool) -> None:
        from ..runtime import Classifier

        self.model = Classifier.load(artifact, threads=threads, batch_size=batch_size)
        self.all_scores = all_scores

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        columns = [batch["position"].tolist(), batch["id"].tolist(), batch["text"].tolist()]
        if "pair" in batch:
            columns.append(batch["pair"].tolist())
        rows = list(zip(*columns, strict=True))
        lines = score_lines(self.model, rows, self.all_scores)
        return {"shard": batch["shard"], "position": batch["position"], "line": np.asarray(lines, dtype=object)}


SHARDS_PER_PASS = 64  # rows per Ray Data pass = 64 x shard_rows (8,192 by default): bounded driver memory


def score_ray(
    artifact: Path,
    patterns: list[str],
    output: Path,
    config: ScoreConfig,
    *,
    address: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> ScoreReport:
    ray = require("ray", "ray")
    started = time.perf_counter()
    inputs = prepare(artifact, patterns, output, config, force)
    parts = parts_dir(output)
    rejects: list[Reject] = []
    rows = read_rows(inputs, config.text_column, config.id_column, config.pair_column)
    all_shards = enumerate(shards(rows, config.shard_rows, rejects))
    report = ScoreReport(output=output)
    actor_args = (str(artifact.resolve()), config.threads_per_worker, config.batch_size, config.all_scores)
    while batch := list(itertools.islice(all_shards, SHARDS_PER_PASS)):
        report.shards += len(batch)
        report.rows += sum(len(shard) for _, shard in batch)
        todo = [(i, shard) for i, shard in batch if not part_is_done(part_path(parts, i), shard_key(rows_of(shard)))]
        report.resumed_shards += len(batch) - len(todo)
        report.recomputed_shards += sum(part_path(parts, i).exists() for i, _ in todo)
        if todo:
            if not report.workers:  # the first pass with work: start (or join) Ray, once
                if not ray.is_initialized():
                    _start(ray, address)
                ray.data.DataContext.get_current().enable_progress_bars = progress
                cpus = int(ray.available_resources().get("CPU", 1))
                report.workers = config.workers or max(1, cpus // config.threads_per_worker)
            _score_pass(ray, todo, parts, actor_args, config, report.workers)
    return finish(report, inputs, parts, rejects, started)


def _start(ray, address: str | None) -> None:
    if address:
        ray.init(address=address, log_to_driver=False)
    else:  # a local instance sized to this process's CPUs
        from ..core.cpu import usable_cpu_count

        ray.init(num_cpus=usable_cpu_count(), include_dashboard=False, log_to_driver=False)


def _score_pass(
    ray, todo: list[tuple[int, list[Row]]], parts: Path, actor_args: tuple, config: ScoreConfig, workers: int
) -> None:
    """Score some shards on Ray Data; write each shard's lines to its part file, in position order."""
    items = [
        {
            "shard": index,
            "position": r.position,
            "id": r.id,
            "text": r.text,
            **({"pair": r.pair} if r.pair is not None else {}),
        }
        for index, shard in todo
        for r in shard
    ]
    dataset = ray.data.from_items(items, override_num_blocks=len(todo))
    scored = dataset.map_batches(
        ScoreActor,
        fn_constructor_args=actor_args,
        batch_size=config.shard_rows,
        batch_format="numpy",
        concurrency=workers,
        num_cpus=config.threads_per_worker,
    )
    lines: dict[int, list[tuple[int, str]]] = {index: [] for index, _ in todo}
    for row in scored.iter_rows():
        lines[int(row["shard"])].append((int(row["position"]), row["line"]))
    keys = {index: shard_key(rows_of(shard)) for index, shard in todo}
    for index, shard_lines in lines.items():
        write_part(part_path(parts, index), "".join(line for _, line in sorted(shard_lines)), keys[index])
