"""Settings of `edgebert score`; the CLI flags map one-to-one onto these fields."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import InputError


@dataclass(frozen=True)
class ScoreConfig:
    workers: int | None = None  # worker processes (default: the CPUs this process may use)
    threads_per_worker: int = 1  # intra-op threads per worker; INT8 artifacts run row by row, so 1 scales best
    shard_rows: int = 128  # rows per shard: the unit of work, of progress saved, and of resume
    batch_size: int = 32  # rows per inference call inside a worker
    all_scores: bool = False  # every label's probability, not only the best
    text_column: str = "text"
    id_column: str | None = None  # a column to copy as "id" (default: PATH:LINE)
    pair_column: str | None = None  # each text's pair, for models trained on text pairs

    def __post_init__(self) -> None:
        for name in ("threads_per_worker", "shard_rows", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a whole number of at least 1, got {value!r}.")
        if self.workers is not None and (not isinstance(self.workers, int) or not 1 <= self.workers <= 1024):
            raise InputError(f"--workers must be between 1 and 1024, got {self.workers!r}.")
        if not self.text_column:
            raise InputError("--text-column must name a column.")
