"""One request coalescer for the teachers that answer many requests in one call (the vLLM
engine, the OpenAI Batch API). It knows nothing about either and is tested on its own.

Concurrent :meth:`Coalescer.submit` calls queue up; a batch starts when ``max_items`` are
queued, or ``max_wait_s`` after the oldest queued item arrived, whichever is first, and only
while fewer than ``max_running`` batches run (items queued meanwhile form the next batch).
``run_batch(items)`` returns one result per item, in order: a result that is an exception
fails only that item's caller (as :class:`TeacherError`); an exception raised by
``run_batch`` itself fails every caller of the batch. A caller that gives up (is cancelled)
before its batch starts is left out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from selfinstruct.errors import TeacherError

T = TypeVar("T")
R = TypeVar("R")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def as_teacher_error(exc: BaseException) -> TeacherError:
    if isinstance(exc, TeacherError):
        return exc
    error = TeacherError(one_line(exc))
    error.__cause__ = exc
    return error


@dataclass
class _Queued(Generic[T, R]):
    item: T
    future: asyncio.Future[R] = field(repr=False)
    queued_at: float = 0.0


class Coalescer(Generic[T, R]):
    """Coalesce concurrent :meth:`submit` calls into batches for ``run_batch``.

    :attr:`batch_sizes` lists the size of every batch started, in order.
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_items: int,
        max_wait_s: float,
        max_running: int | None = None,
        name: str = "batch",
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._run_batch = run_batch
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.max_running = max_running
        self.name = name
        self.batch_sizes: list[int] = []
        self._queue: deque[_Queued[T, R]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def batches_run(self) -> int:
        return len(self.batch_sizes)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result."""
        if self._closed:
            raise TeacherError(f"the {self.name} batcher is closed")
        loop = asyncio.get_running_loop()
        wake = self._ensure_dispatcher(loop)
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append(_Queued(item, future, time.monotonic()))
        wake.set()
        return await future

    async def aclose(self, *, cancel_running: bool = False) -> None:
        """Fail what is still queued; let running batches finish (or cancel them)."""
        self._closed = True
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None and not dispatcher.done():
            dispatcher.cancel()
            if self._loop is asyncio.get_running_loop():
                await asyncio.gather(dispatcher, return_exceptions=True)
        self._fail_queued()
        running = list(self._running)
        if not running or self._loop is not asyncio.get_running_loop():
            return
        if cancel_running:
            for task in running:
                task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    # -- dispatching ---------------------------------------------------------------------------

    def _ensure_dispatcher(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        if self._loop is not loop or self._dispatcher is None or self._dispatcher.done():
            if self._loop is not loop:  # a new event loop: what the old one held is gone
                self._fail_queued()
                self._running.clear()
            self._loop = loop
            self._wake = asyncio.Event()
            self._dispatcher = loop.create_task(self._dispatch(), name=f"{self.name}-coalescer")
        assert self._wake is not None
        return self._wake

    async def _dispatch(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            while self._queue and self._queue[0].future.done():  # callers that gave up
                self._queue.popleft()
            if not self._queue:
                wake.clear()
                await wake.wait()
                continue
            if self.max_running is not None and len(self._running) >= self.max_running:
                await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
                continue
            if len(self._queue) < self.max_items:
                left = self._queue[0].queued_at + self.max_wait_s - time.monotonic()
                if left > 0:
                    wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=left)
                    continue
            batch: list[_Queued[T, R]] = []
            while self._queue and len(batch) < self.max_items:
                queued = self._queue.popleft()
                if not queued.future.done():
                    batch.append(queued)
            if batch:
                self._start(batch)
            await asyncio.sleep(0)  # let callers queue before the next batch is cut

    def _start(self, batch: list[_Queued[T, R]]) -> None:
        self.batch_sizes.append(len(batch))
        assert self._loop is not None
        task = self._loop.create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._wake is not None:
            self._wake.set()

    async def _run(self, batch: list[_Queued[T, R]]) -> None:
        try:
            results = await self._run_batch([queued.item for queued in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            self._fail(batch, lambda: TeacherError(f"the {self.name} batcher was closed"))
            raise
        except Exception as exc:
            cause = exc
            message = f"{self.name} of {len(batch)} failed: {one_line(cause)}"

            def error() -> TeacherError:
                failure = TeacherError(message)
                failure.__cause__ = cause
                return failure

            self._fail(batch, error)
            return
        for queued, result in zip(batch, results, strict=True):
            if queued.future.done():
                continue
            if isinstance(result, BaseException):
                queued.future.set_exception(as_teacher_error(result))
            else:
                queued.future.set_result(result)

    @staticmethod
    def _fail(batch: Sequence[_Queued[T, R]], error: Callable[[], TeacherError]) -> None:
        for queued in batch:
            if not queued.future.done():
                with contextlib.suppress(RuntimeError):  # its event loop is closed
                    queued.future.set_exception(error())

    def _fail_queued(self) -> None:
        queued = list(self._queue)
        self._queue.clear()
        self._fail(queued, lambda: TeacherError(f"the {self.name} batcher was closed"))
