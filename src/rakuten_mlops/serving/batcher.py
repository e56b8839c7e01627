"""Micro-batching: concurrent requests share one model `predict` call, run off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
    next: _Job | None = None  # the same request's next chunk, queued when this one is taken
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class MicroBatcher(Generic[M]):
    """Collects queued jobs into one call of `predict_fn(model, rows)` in a dedicated thread.

    While `parallel` batches run, new requests queue up and form the next batch, so per-call
    overhead is paid once per batch instead of once per request; `wait_ms` > 0 additionally
    waits that long for company before a batch starts. The model is read once per batch
    (`get_model`), so a swapped-in model serves every batch started after the swap and no batch
    mixes two models. Parallel batches help only a model that releases the interpreter lock
    while it predicts (an image network): for one that holds it (the text models), a second
    batch in flight only halves the batches. `slots_for(model)`, when given, says how many of
    the `parallel` calls may be in flight while `model` is served.

    A request of more than `split_rows` rows is cut into chunks of at most `split_rows`; each
    chunk joins the back of the queue when the previous one is taken into a batch, so requests
    that arrived meanwhile go first and a large batch request does not hold up small ones (with
    nobody else waiting, its chunks fill one call up to `max_rows` as before). Its rows still
    come back in order and from one model (if a swap lands between its chunks, the request is
    predicted again, whole, with the new model).
    """

    def __init__(
        self,
        get_model: Callable[[], M | None],
        predict_fn: Callable[[M, list[Row]], list[Row]],
        max_rows: int = 256,
        wait_ms: float = 0.0,
        parallel: int = 1,
        split_rows: int | None = None,
        slots_for: Callable[[M], int] | None = None,
    ) -> None:
        self.get_model = get_model
        self.predict_fn = predict_fn
        self.max_rows = max_rows
        self.wait_s = wait_ms / 1000
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._carry: _Job | None = None  # taken from the queue, but would have overfilled its batch
        self.parallel = parallel
        self.slots_for = slots_for
        self._freed: asyncio.Event | None = None  # a batch finished: a slot may be free
        self._slots_of: tuple[M | None, int] = (None, parallel)
        self.split_rows = max(1, min(split_rows or max_rows, max_rows))
        self._executor = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="predict")

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._queue = asyncio.Queue()
        self._freed = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the loop; queued jobs fail with NoModelError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        waiting = [self._carry] if self._carry is not None else []
        self._carry = None
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for job in waiting:
            chunk: _Job | None = job
            while chunk is not None:  # a split request's later chunks are not queued yet
                _resolve(chunk, error=NoModelError("the server is shutting down"))
                chunk = chunk.next
        self._executor.shutdown(wait=True)

    async def submit(self, rows: list[Row]) -> tuple[M, list[Row]]:
        """Predict `rows`; returns the model that answered and one output row per input row."""
        if self._queue is None:
            raise NoModelError("the model holder is not started")
        if len(rows) <= self.split_rows:
            job = _Job(rows)
            self._queue.put_nowait(job)
            return await job.future  # type: ignore[no-any-return]
        size = self.split_rows
        jobs = [_Job(rows[i : i + size]) for i in range(0, len(rows), size)]
        for job, after in itertools.pairwise(jobs):
            job.next = after
        self._queue.put_nowait(jobs[0])
        try:
            parts: list[tuple[M, list[Row]]] = await asyncio.gather(*(job.future for job in jobs))
        finally:
            for job in jobs:  # on an error or a client gone: chunks not started are skipped
                if not job.future.done():
                    job.future.cancel()
        model = parts[0][0]
        if any(m is not model for m, _ in parts):
            return await self._whole(rows)
        return model, [row for _, out in parts for row in out]

    async def _whole(self, rows: list[Row]) -> tuple[M, list[Row]]:
        """`rows` in one predict call with the current model (after a swap between chunks)."""
        model = self.get_model()
        if model is None:
            raise NoModelError("no model is loaded yet")
        loop = asyncio.get_running_loop()
        return model, await loop.run_in_executor(self._executor, self.predict_fn, model, rows)

    async def _collect(self, first: _Job) -> list[_Job]:
        assert self._queue is not None
        queue = self._queue
        jobs: list[_Job] = []
        n = 0

        def take(job: _Job) -> None:
            nonlocal n
            jobs.append(job)
            n += len(job.rows)
            if job.next is not None and not job.next.future.done():  # done: its client went away
                queue.put_nowait(job.next)

        take(first)
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
            if n + len(job.rows) > self.max_rows:
                self._carry = job  # first in the next batch
                break
            take(job)
        return jobs

    def slots(self) -> int:
        """How many predict calls may be in flight now (for the model being served)."""
        model = self.get_model()
        if self.slots_for is None or model is None:
            return self.parallel
        if self._slots_of[0] is not model:  # asked once per model served
            self._slots_of = (model, max(1, min(self.parallel, self.slots_for(model))))
        return self._slots_of[1]

    async def _loop(self) -> None:
        assert self._queue is not None and self._freed is not None
        freed = self._freed
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            freed.set()

        try:
            while True:
                # While every slot is busy, requests queue up into the next batch.
                while len(running) >= self.slots():
                    freed.clear()
                    await freed.wait()
                first, self._carry = self._carry, None
                jobs = await self._collect(first or await self._queue.get())
                jobs = [j for j in jobs if not j.future.done()]  # clients that went away
                task = asyncio.create_task(self._guarded(jobs))
                running.add(task)
                task.add_done_callback(finished)
        finally:
            for task in running:
                task.cancel()

    async def _guarded(self, jobs: list[_Job]) -> None:
        try:
            if jobs:
                await self._run(jobs)
        except Exception as exc:  # never leave a request hanging
            log.exception("micro-batch failed")
            for job in jobs:
                _resolve(job, error=exc)

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
