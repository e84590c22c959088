"""Micro-batching: rows of concurrent requests share inference calls.

A request's rows join a queue; one worker task takes the oldest request, waits up to `max_wait_ms` for more, and
runs up to `max_batch` rows in one call on an inference thread. Whether the engine then runs them as one batch or
row by row (artifacts with per-call INT8 scales) is the runtime's business: answers never depend on batch-mates.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics


class QueueFull(Exception):
    pass


@dataclass
class Job:
    rows: list[Any]
    future: asyncio.Future
    group: Any = None  # rows of different groups (e.g. with and without pairs) never share a call
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(
        self,
        run: Callable[[Any, list[Any]], list[Any]],
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        metrics: Metrics,
    ) -> None:
        self.run = run  # (group, rows) -> one result per row; called on the inference thread
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.metrics = metrics
        self.jobs: list[Job] = []
        self.queued_rows = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, rows: list[Any], group: Any = None) -> list[Any]:
        if self.queued_rows + len(rows) > self.max_queue:
            raise QueueFull
        job = Job(rows, asyncio.get_running_loop().create_future(), group)
        self.jobs.append(job)
        self.queued_rows += len(rows)
        self._wake.set()
        return await job.future

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.jobs:
                first = self.jobs[0]
                deadline = first.enqueued + self.max_wait
                while self._rows_ready(first.group) < self.max_batch and (delay := deadline - time.perf_counter()) > 0:
                    await asyncio.sleep(min(delay, 0.0005))
                batch = self._take(first.group)
                rows = [row for job in batch for row in job.rows]
                self.metrics.batch(len(rows))
                try:
                    results = await loop.run_in_executor(None, self.run, first.group, rows)
                except Exception as exc:  # delivered to each waiting request, which answers 500
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                start = 0
                for job in batch:
                    if not job.future.done():
                        job.future.set_result(results[start : start + len(job.rows)])
                    start += len(job.rows)

    def _rows_ready(self, group: Any) -> int:
        return sum(len(job.rows) for job in self.jobs if job.group == group)

    def _take(self, group: Any) -> list[Job]:
        """The oldest jobs of `group` up to max_batch rows (a larger single request goes alone, whole)."""
        taken, rows = [], 0
        for job in list(self.jobs):
            if job.group != group:
                continue
            if taken and rows + len(job.rows) > self.max_batch:
                break
            taken.append(job)
            rows += len(job.rows)
            self.jobs.remove(job)
        self.queued_rows -= rows
        return taken
