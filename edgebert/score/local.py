"""Score a corpus on local worker processes: shards, resume, and one ordered output written atomically.

    inputs --read.py--> rows ──shards of `shard_rows`──> workers (each: load + verify the artifact once)
                          │                                   │ OUT.parts/shard-000123.jsonl (atomic)
                          └──> rejects                        ▼
    OUT  <──concatenate parts in order (temp file, fsync, rename)── OUT.parts/  (removed at the end)

A re-run after Ctrl-C, a crash or kill -9 finds OUT.parts/plan.json, checks it describes the same job (inputs'
sizes and mtimes, artifact checksum, settings), and skips the shards already written. Output rows:
{"position", "id", "label", "score"} (+ "labels" for a multi-label model, "scores" with --all-scores), in input order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

from ..core.cpu import usable_cpu_count
from ..core.errors import ArtifactExistsError, InputError, WorkerDiedError
from ..core.files import check_not_an_input, check_writable, sha256_file, write_text_atomic
from ..core.fleet import artifact_fingerprint
from ..core.jsonl import json_line
from ..core.progress import progress_bar
from .config import ScoreConfig
from .read import Reject, Row, check_columns, expand_inputs, read_rows

PLAN = "plan.json"


@dataclass
class ScoreReport:
    output: Path
    rows: int = 0
    rejects: int = 0
    shards: int = 0
    resumed_shards: int = 0
    recomputed_shards: int = 0  # saved parts that did not match their shard (edited, truncated, planted): redone
    seconds: float = 0.0
    rejects_file: Path | None = None
    workers: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def parts_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.parts"


def part_path(parts: Path, shard: int) -> Path:
    """One shard's scored lines: written whole (atomically) by a local worker or a Ray pass, then sealed."""
    return parts / f"shard-{shard:06d}.jsonl"


def shard_key(rows: list[tuple]) -> str:
    """What a shard is: the digest of its rows' positions, ids, texts (and pairs): a part answers exactly these."""
    digest = hashlib.sha256()
    for row in rows:  # (position, id, text) or (position, id, text, pair): rows_of
        digest.update(json.dumps(list(row), ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def write_part(part: Path, text: str, key: str) -> None:
    """The part, then its seal: the digest of its bytes and of the shard it answers. Resume trusts a part only
    when both still match."""
    data = text.encode("utf-8")
    write_text_atomic(part, text)
    write_text_atomic(part.with_suffix(".seal"), json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "shard": key}))


def part_is_done(part: Path, key: str) -> bool:
    try:
        seal = json.loads(part.with_suffix(".seal").read_text(encoding="utf-8"))
        return isinstance(seal, dict) and seal.get("shard") == key and sha256_file(part) == seal.get("sha256")
    except (OSError, ValueError):
        return False


def rows_of(shard: list[Row]) -> list[tuple]:
    """(position, id, text) per row, or (position, id, text, pair) when the rows have pairs."""
    return [(r.position, r.id, r.text) if r.pair is None else (r.position, r.id, r.text, r.pair) for r in shard]


def rejects_path(output: Path) -> Path:
    return output.with_name(output.name + ".rejects.jsonl")


def plan_for(artifact: Path, inputs: list[Path], config: ScoreConfig) -> dict:
    from ..runtime import Classifier, front_door

    if front_door(artifact) is not Classifier:  # score writes one label per text: the Classifier's answers
        raise InputError(f"{artifact} labels tokens; `score` classifies whole texts. Use `edgebert predict --json`.")
    return {
        "artifact_files": artifact_fingerprint(artifact),
        "inputs": [[str(p), sha256_file(p)] for p in inputs],  # by content: an in-place edit is a new plan
        "settings": {k: v for k, v in asdict(config).items() if k not in ("workers", "threads_per_worker")},
    }


def prepare(artifact: Path, patterns: list[str], output: Path, config: ScoreConfig, force: bool) -> list[Path]:
    """Validate, and decide between a fresh run and a resume (parts of the same plan are kept). Returns the inputs."""
    inputs = expand_inputs(patterns)
    check_columns(inputs, config.text_column, config.pair_column)
    check_writable(output, force, inputs=(artifact, *inputs))
    if output.suffix.lower() == ".parquet":  # before scoring anything, not after
        from ..core.errors import require

        require("pyarrow", "ray")
    for derived in (rejects_path(output), parts_dir(output), lock_path(output)):  # beside the output: never inputs
        check_not_an_input(derived, (artifact, *inputs), flag="--output")
    plan = plan_for(artifact, inputs, config)
    parts = parts_dir(output)
    if parts.exists():
        try:
            previous = json.loads((parts / PLAN).read_text())
        except (OSError, ValueError):
            previous = None
        if previous != plan or force:
            if not force:
                raise ArtifactExistsError(
                    f"{parts} holds an unfinished run with other inputs or settings; pass --force to start over."
                )
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    write_text_atomic(parts / PLAN, json.dumps(plan))
    return inputs


def shards(rows: Iterator[Row | Reject], size: int, rejects: list[Reject]) -> Iterator[list[Row]]:
    """Consecutive valid rows in shards of `size`; rejects collected on the side."""
    shard: list[Row] = []
    for item in rows:
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        shard.append(item)
        if len(shard) == size:
            yield shard
            shard = []
    if shard:
        yield shard


def score_local(
    artifact: Path,
    patterns: list[str],
    output: Path,
    config: ScoreConfig,
    *,
    force: bool = False,
    progress: bool = True,
) -> ScoreReport:
    started = time.perf_counter()
    inputs = prepare(artifact, patterns, output, config, force)
    parts = parts_dir(output)
    workers = config.workers or usable_cpu_count()
    report = ScoreReport(output=output, workers=workers)
    rejects: list[Reject] = []
    bar = progress_bar(unit=" rows", disable=not progress, desc="scoring")
    context = get_context("spawn")  # fresh interpreters: no inherited threads or ORT state, same on every OS
    with (
        _worker_deaths_reported(output),
        ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(str(artifact), config)
        ) as pool,
    ):
        pending: set = set()
        for index, shard in enumerate(
            shards(
                read_rows(inputs, config.text_column, config.id_column, config.pair_column), config.shard_rows, rejects
            )
        ):
            report.shards += 1
            report.rows += len(shard)
            part, rows = part_path(parts, index), rows_of(shard)
            key = shard_key(rows)
            if part_is_done(part, key):
                report.resumed_shards += 1
                bar.update(len(shard))
                continue
            report.recomputed_shards += part.exists()
            if len(pending) >= 2 * workers:  # bounded: the reader never runs far ahead of the workers
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    bar.update(future.result())
            pending.add(pool.submit(_score_shard, rows, str(part), key))
        for future in pending:
            bar.update(future.result())
    bar.close()
    return finish(report, inputs, parts, rejects, started)


@contextlib.contextmanager
def output_lock(output: Path):
    """One `score` run per output at a time: two would share the saved shards and race to merge and remove them.
    An advisory lock (released by the OS when a run dies, so kill -9 leaves nothing to clean up); none on Windows."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = lock_path(output)
    created = not path.exists()  # only a lock file this run made is removed: never a file that was already there
    with open(path, "a+") as handle:  # "a+": opening changes nothing in an existing file
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"Another `edgebert score` run is writing {output}; wait for it to finish, or choose another --output."
            ) from None
        try:
            yield
        finally:
            if created:
                path.unlink(missing_ok=True)


def lock_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def _worker_deaths_reported(output: Path):
    """A worker killed from outside (the OOM killer, kill -9) breaks the pool: say so, and that finished shards
    are kept, instead of a traceback."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        yield
    except BrokenProcessPool:
        raise WorkerDiedError(
            f"A scoring worker process died (killed, or out of memory). Finished shards are kept in "
            f"{parts_dir(output)}: run the same command again to resume (fewer --workers if memory ran out)."
        ) from None


def finish(report: ScoreReport, inputs: list[Path], parts: Path, rejects: list[Reject], started: float) -> ScoreReport:
    """Concatenate the parts in order into the output (atomically), write the rejects, remove the parts, and
    complete the report; shared by local workers and Ray. Inputs without a single row are an error."""
    output = report.output
    if not report.rows and not rejects:
        shutil.rmtree(parts, ignore_errors=True)
        raise InputError(f"The inputs ({', '.join(map(str, inputs))}) hold no rows.")
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            for index in range(report.shards):
                with part_path(parts, index).open("rb") as part:
                    shutil.copyfileobj(part, out)
            out.flush()
            os.fsync(out.fileno())
        if output.suffix.lower() == ".parquet":
            _to_parquet(tmp, output)
        else:
            os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    target = rejects_path(output)
    if rejects:
        write_text_atomic(target, "".join(json_line(asdict(r)) + "\n" for r in rejects))
    else:
        target.unlink(missing_ok=True)
    shutil.rmtree(parts, ignore_errors=True)
    report.rejects = len(rejects)
    report.rejects_file = target if rejects else None
    report.seconds = time.perf_counter() - started
    return report


def _to_parquet(jsonl: Path, output: Path) -> None:
    from ..core.errors import require

    require("pyarrow", "ray")
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    table = pa_json.read_json(jsonl)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, output)


# ---- inside each worker process
_MODEL = None
_CONFIG: ScoreConfig | None = None


def _init_worker(artifact: str, config: ScoreConfig) -> None:
    global _MODEL, _CONFIG
    from ..runtime import Classifier

    _die_with_parent()
    _MODEL = Classifier.load(artifact, threads=config.threads_per_worker, batch_size=config.batch_size)
    _CONFIG = config


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the parent dies (kill -9 included), so no orphan keeps scoring."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _score_shard(rows: list[tuple[int, str, str]], part: str, key: str) -> int:
    write_part(Path(part), "".join(score_lines(_MODEL, rows, _CONFIG.all_scores)), key)
    return len(rows)


def score_lines(model, rows: list[tuple[int, str, str]], all_scores: bool) -> list[str]:
    """One JSON line (newline included) per (position, id, text) row; shared by local workers and Ray actors, so
    their outputs are equal byte for byte."""
    texts = [row[2] for row in rows]
    pairs = [row[3] for row in rows] if rows and len(rows[0]) == 4 else None
    logits = model.predict_logits(texts, pairs)
    probabilities, given = model.activate(logits), model.decide(logits)
    labels = model.labels
    out = []
    for (position, row_id, *_), row, chosen in zip(rows, probabilities, given, strict=True):
        best = int(row.argmax())
        record = {"position": position, "id": row_id, "label": labels[best], "score": round(float(row[best]), 6)}
        if model.multi_label:  # every label at or above its threshold, best first (maybe none)
            record["labels"] = list(chosen)
        if all_scores:
            record["scores"] = {label: round(float(p), 6) for label, p in zip(labels, row, strict=True)}
        out.append(json_line(record) + "\n")
    return out
