"""Micro-batching: rows of concurrent requests share inference calls.

A request's rows join a queue; when a model copy is idle, the worker takes the oldest request, waits up to
`max_wait_ms` for more (only while another batch is in flight: a lone request on an idle server runs at once), and
runs up to `max_batch` rows in one call on that copy's thread. Whether the engine then runs them as one batch or
row by row (artifacts with per-call INT8 scales) is the runtime's business: answers never depend on batch-mates.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    """runners: one callable per model copy, (group, rows) -> (one result per row, {stage: seconds}); each runs on
    its own thread, so with several copies several batches are in flight at once. `submit` answers a request's
    results and its timings: the stages' seconds of the batch it ran in, and `queue` (waiting for a model copy)."""

    def __init__(
        self,
        runners: list[Callable[[Any, list[Any]], list[Any]]],
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        metrics: Metrics,
    ) -> None:
        self.runners = runners
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.metrics = metrics
        self.jobs: list[Job] = []
        self.queued_rows = 0
        self._pool = ThreadPoolExecutor(len(runners), thread_name_prefix="edgebert-infer")
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, rows: list[Any], group: Any = None) -> tuple[list[Any], dict[str, float]]:
        if self.queued_rows + len(rows) > self.max_queue:
            raise QueueFull
        job = Job(rows, asyncio.get_running_loop().create_future(), group)
        self.jobs.append(job)
        self.queued_rows += len(rows)
        self._wake.set()
        return await job.future

    async def _worker(self) -> None:
        free: asyncio.Queue = asyncio.Queue()
        for runner in self.runners:
            free.put_nowait(runner)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.jobs:
                runner = await free.get()  # a model copy is idle
                if not self.jobs:
                    free.put_nowait(runner)
                    break
                first = self.jobs[0]
                # Wait for company only under load (another batch in flight): a lone request on an idle
                # server runs at once instead of paying max_wait for batch-mates that are not coming.
                deadline = first.enqueued + (self.max_wait if self._running else 0.0)
                while self._rows_ready(first.group) < self.max_batch and (delay := deadline - time.perf_counter()) > 0:
                    await asyncio.sleep(min(delay, 0.0005))
                batch = self._take(first.group)
                task = asyncio.get_running_loop().create_task(self._run(runner, first.group, batch, free))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _run(self, runner, group: Any, batch: list[Job], free: asyncio.Queue) -> None:
        rows = [row for job in batch for row in job.rows]
        self.metrics.batch(len(rows))
        started = time.perf_counter()
        try:
            results, timings = await asyncio.get_running_loop().run_in_executor(self._pool, runner, group, rows)
        except Exception as exc:  # delivered to each waiting request, which answers 500
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        finally:
            free.put_nowait(runner)
        start = 0
        for job in batch:
            if not job.future.done():
                job.future.set_result(
                    (results[start : start + len(job.rows)], {**timings, "queue": started - job.enqueued})
                )
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
