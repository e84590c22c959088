"""The bench stage's config; every default lives here. Light to import: the CLI builds it before any work."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.errors import InputError
from ..core.validate import positive


@dataclass
class BenchConfig:
    shapes: list[tuple[int, int]] = field(default_factory=lambda: [(1, 16), (1, 128), (32, 128)])
    threads: int | None = None
    rounds: int = 5
    seconds_per_round: float = 1.0
    real_text_batch: int = 32
    cold_start: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.rounds, int) or not 1 <= self.rounds <= 1000:
            raise InputError(f"--rounds must be between 1 and 1000, got {self.rounds}.")
        if not math.isfinite(self.seconds_per_round) or not 0 < self.seconds_per_round <= 600:
            raise InputError(f"--seconds must be a number of seconds in (0, 600], got {self.seconds_per_round}.")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}.")
        positive(self, "real_text_batch")
