"""--agreement POOL: an accuracy budget confirmed on unlabelled texts. The share of pool texts whose label a
candidate changes against its reference bounds its accuracy change on texts like the pool's (core/metrics
`changed_share_bound`); a pool of 12,000 resolves a fraction of a point where 1,736 labelled texts cannot.

Shared by `export --max-drop` (candidate graphs against the fp32 graph) and `--tune` (artifacts against the
teacher's fp32 graph)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.errors import InputError
from ..core.metrics import changed_share_bound


def check_pool(pool) -> None:
    if len(pool) == 0:
        raise InputError(f"The agreement pool {pool.source} is empty; pass unlabelled texts like the app's.")


def changed_bound(changed: np.ndarray, say: Callable[[str], None]) -> list[float]:
    """(N,) bool, which pool labels a candidate changed -> ±the 95% Wilson upper end of that share, in points."""
    count = int(np.sum(changed))
    say(f"    {count} of {len(changed)} pool labels changed against the reference")
    return changed_share_bound(count, len(changed))


def evidence_name(pool, reference: str) -> str:
    """What the bound was measured on, as the manifest records it."""
    return f"labels changed against {reference} on {pool.source} ({len(pool)} unlabelled texts), 95% Wilson bound"
