"""Micro-batching: concurrent requests share one model `predict` call, run off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
M = TypeVar("M")
Row = dict[str, Any]


class NoModelError(RuntimeError):
    """No model is loaded yet."""


@dataclass
class _Job:
    rows: list[Row]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher(Generic[M]):
    """Collects queued jobs into one call of `predict_fn(model, rows)` in a dedicated thread.

    While `parallel` batches run, new requests queue up and form the next batch, so per-call
    overhead is paid once per batch instead of once per request; `wait_ms` > 0 additionally
    waits that long for company before a batch starts. The model is read once per batch
    (`get_model`), so a swapped-in model serves every batch started after the swap and no batch
    mixes two models. Two parallel batches help when the model releases the GIL (NumPy/SciPy).
    """

    def __init__(
        self,
        get_model: Callable[[], M | None],
        predict_fn: Callable[[M, list[Row]], list[Row]],
        max_rows: int = 256,
        wait_ms: float = 0.0,
        parallel: int = 1,
    ) -> None:
        self.get_model = get_model
        self.predict_fn = predict_fn
        self.max_rows = max_rows
        self.wait_s = wait_ms / 1000
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self.parallel = parallel
        self._executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="predict")

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the loop; queued jobs fail with NoModelError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            _resolve(self._queue.get_nowait(), error=NoModelError("the server is shutting down"))
        self._executor.shutdown(wait=True)

    async def submit(self, rows: list[Row]) -> tuple[M, list[Row]]:
        """Predict `rows`; returns the model that answered and one output row per input row."""
        if self._queue is None:
            raise NoModelError("the model holder is not started")
        job = _Job(rows)
        self._queue.put_nowait(job)
        return await job.future  # type: ignore[no-any-return]

    async def _collect(self, first: _Job) -> list[_Job]:
        assert self._queue is not None
        jobs, n = [first], len(first.rows)
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while n < self.max_rows:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            jobs.append(job)
            n += len(job.rows)
        return jobs

    async def _loop(self) -> None:
        assert self._queue is not None
        slots = asyncio.Semaphore(self.parallel)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await slots.acquire()  # while every slot is busy, requests queue up into the next batch
                jobs = await self._collect(await self._queue.get())
                jobs = [j for j in jobs if not j.future.done()]  # clients that went away
                task = asyncio.create_task(self._guarded(jobs, slots))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()

    async def _guarded(self, jobs: list[_Job], slots: asyncio.Semaphore) -> None:
        try:
            if jobs:
                await self._run(jobs)
        except Exception as exc:  # never leave a request hanging
            log.exception("micro-batch failed")
            for job in jobs:
                _resolve(job, error=exc)
        finally:
            slots.release()

    async def _run(self, jobs: list[_Job]) -> None:
        model = self.get_model()
        if model is None:
            for job in jobs:
                _resolve(job, error=NoModelError("no model is loaded yet"))
            return
        loop = asyncio.get_running_loop()
        rows = [row for job in jobs for row in job.rows]
        try:
            out = await loop.run_in_executor(self._executor, self.predict_fn, model, rows)
        except Exception:
            if len(jobs) == 1:
                raise
            # One bad input must not fail its neighbours: retry each job on its own.
            for job in jobs:
                try:
                    _resolve(
                        job,
                        (model, await loop.run_in_executor(self._executor, self.predict_fn, model, job.rows)),
                    )
                except Exception as exc:
                    _resolve(job, error=exc)
            return
        start = 0
        for job in jobs:
            _resolve(job, (model, out[start : start + len(job.rows)]))
            start += len(job.rows)


def _resolve(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
