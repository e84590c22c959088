"""The same scoring job on Ray Data, from a laptop's local Ray to a cluster (`--ray [ADDRESS]`).

Rows are read by read.py (so rejects are the same as locally), handed to Ray Data in blocks, scored by a callable
class with one instance per actor (it loads and verifies the artifact once, with intra-op threads set to the
actor's CPUs: Ray sets OMP_NUM_THREADS=1, which ONNX Runtime ignores), and gathered back in position order into
the same output format as the local mode, written atomically. Ray retries failed tasks; the local mode's
shard-level resume does not apply here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..core.errors import InputError, require
from ..core.files import write_text_atomic
from .config import ScoreConfig
from .local import ScoreReport, finish, parts_dir, prepare, score_lines
from .read import Reject, read_rows


class ScoreActor:
    """Ray Data callable class: constructed once per actor, called once per batch of rows."""

    def __init__(self, artifact: str, threads: int, batch_size: int, all_scores: bool) -> None:
        from ..runtime import Classifier

        self.model = Classifier.load(artifact, threads=threads, batch_size=batch_size)
        self.all_scores = all_scores

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = list(zip(batch["position"].tolist(), batch["id"].tolist(), batch["text"].tolist(), strict=True))
        lines = score_lines(self.model, rows, self.all_scores).splitlines(keepends=True)
        return {"position": batch["position"], "line": np.asarray(lines, dtype=object)}


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
    rejects: list[Reject] = []
    items = []
    for item in read_rows(inputs, config.text_column, config.id_column):
        if isinstance(item, Reject):
            rejects.append(item)
        else:
            items.append({"position": item.position, "id": item.id, "text": item.text})
    if not items and not rejects:
        raise InputError(f"The inputs ({', '.join(map(str, inputs))}) hold no rows.")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a local instance sized to this process's CPUs
            from ..core.cpu import usable_cpu_count

            ray.init(num_cpus=usable_cpu_count(), include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = progress
    workers = config.workers or max(1, int(ray.available_resources().get("CPU", 1)) // config.threads_per_worker)
    report = ScoreReport(output=output, workers=workers, rows=len(items), rejects=len(rejects))
    parts = parts_dir(output)
    if items:
        dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items) // config.shard_rows))
        scored = dataset.map_batches(
            ScoreActor,
            fn_constructor_args=(
                str(artifact.resolve()),
                config.threads_per_worker,
                config.batch_size,
                config.all_scores,
            ),
            batch_size=config.shard_rows,
            batch_format="numpy",
            concurrency=workers,
            num_cpus=config.threads_per_worker,
        )
        rows = sorted(scored.iter_rows(), key=lambda r: r["position"])
        write_text_atomic(parts / "shard-000000.jsonl", "".join(r["line"] for r in rows))
    else:
        write_text_atomic(parts / "shard-000000.jsonl", "")
    finish(output, parts, 1, rejects)
    report.shards = 1
    report.rejects_file = output.with_name(output.name + ".rejects.jsonl") if rejects else None
    report.seconds = time.perf_counter() - started
    return report
