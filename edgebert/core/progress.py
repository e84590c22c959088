"""Progress bars when tqdm is installed (it comes with the build-side extras); silence on a base install."""

from __future__ import annotations

import sys
from typing import Any


class _NoBar:
    def __init__(self, iterable=None, **_: Any) -> None:
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, **_: Any) -> None: ...

    def write(self, message: str) -> None:
        print(message, file=sys.stderr)

    def close(self) -> None: ...


def progress_bar(iterable=None, **options: Any):
    """tqdm(iterable, file=sys.stderr, **options), or a stand-in with the same methods that prints nothing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar(iterable, **options)
    return tqdm(iterable, file=sys.stderr, **options)
