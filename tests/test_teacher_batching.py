"""The one request coalescer (selfinstruct.teachers.batching) with plain batch functions.

The first tests run it the way the vLLM teacher does (a synchronous batch function in a worker
thread, one batch at a time); the rest the way the Batch API teacher does (many batches at
once, flushed by size or by time).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from selfinstruct.errors import TeacherError
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Completion, Request
from selfinstruct.teachers.batching import Coalescer


def run(coro):
    return asyncio.run(coro)


def one_at_a_time(
    run_batch: Callable[[list[Any]], Sequence[Any]],
    max_batch_size: int = 256,
    max_wait_s: float = 0.005,
) -> Coalescer[Any, Any]:
    """A coalescer as the vLLM teacher builds one: ``run_batch`` in a thread, one at a time."""

    async def threaded(items: list[Any]) -> Sequence[Any]:
        return await asyncio.to_thread(run_batch, items)

    return Coalescer(threaded, max_items=max_batch_size, max_wait_s=max_wait_s, max_running=1)


def req(i: int) -> Request:
    return Request(stage="instructions", prompt=str(i))


def echo_batch(calls: list[list[Request]], delay_s: float = 0.0):
    """A batch function answering each request with its own prompt, recording each call."""

    def run_batch(requests: list[Request]) -> list[Completion]:
        calls.append(list(requests))
        time.sleep(delay_s)
        return [
            Completion(text=f"echo {r.prompt}", finish_reason="stop", usage=Usage(prompt_tokens=1))
            for r in requests
        ]

    return run_batch


def test_concurrent_submits_are_coalesced_in_order():
    calls: list[list[Request]] = []
    batcher = one_at_a_time(echo_batch(calls), max_batch_size=64, max_wait_s=0.01)

    async def main():
        results = await asyncio.gather(*(batcher.submit(req(i)) for i in range(50)))
        await batcher.aclose()
        return results

    results = run(main())
    assert [r.text for r in results] == [f"echo {i}" for i in range(50)]
    assert len(calls) == 1
    assert [r.prompt for r in calls[0]] == [str(i) for i in range(50)]
    assert batcher.batch_sizes == [50]


def test_batches_never_exceed_max_size():
    calls: list[list[Request]] = []
    batcher = one_at_a_time(echo_batch(calls), max_batch_size=8, max_wait_s=0.001)

    async def main():
        return await asyncio.gather(*(batcher.submit(req(i)) for i in range(30)))

    results = run(main())
    assert [r.text for r in results] == [f"echo {i}" for i in range(30)]
    assert batcher.batch_sizes == [8, 8, 8, 6]
    assert [r.prompt for call in calls for r in call] == [str(i) for i in range(30)]


def test_requests_arriving_during_a_batch_form_the_next_batch():
    calls: list[list[Request]] = []
    batcher = one_at_a_time(echo_batch(calls, delay_s=0.05), max_wait_s=0.001)

    async def main():
        first = asyncio.ensure_future(batcher.submit(req(0)))
        await asyncio.sleep(0.02)  # the first batch is running now
        later = [asyncio.ensure_future(batcher.submit(req(i))) for i in range(1, 11)]
        return await asyncio.gather(first, *later)

    results = run(main())
    assert [r.text for r in results] == [f"echo {i}" for i in range(11)]
    assert batcher.batch_sizes == [1, 10]


def test_only_one_batch_runs_at_a_time():
    active = 0
    most = 0
    lock = threading.Lock()

    def run_batch(items: list[int]) -> list[int]:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        return [i * 2 for i in items]

    batcher = one_at_a_time(run_batch, max_batch_size=4, max_wait_s=0.0)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(20)))

    assert run(main()) == [i * 2 for i in range(20)]
    assert most == 1
    assert sum(batcher.batch_sizes) == 20


def test_an_exception_in_run_batch_reaches_every_caller_as_teacher_error():
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("CUDA out of memory\nlots of detail")

    batcher = one_at_a_time(broken, max_wait_s=0.005)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)

    results = run(main())
    assert len(results) == 5
    for error in results:
        assert isinstance(error, TeacherError)
        assert "CUDA out of memory" in str(error)
        assert "\n" not in str(error)
        assert isinstance(error.__cause__, RuntimeError)


def test_a_per_item_exception_fails_only_that_caller():
    def picky(items: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {i}") if i == 3 else i for i in items]

    batcher = one_at_a_time(picky)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)

    results = run(main())
    assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
    assert isinstance(results[3], TeacherError) and "bad 3" in str(results[3])


def test_a_wrong_number_of_results_fails_the_batch():
    batcher = one_at_a_time(lambda items: items[:-1])

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, TeacherError) for r in run(main()))


def test_the_batcher_keeps_working_after_a_failed_batch():
    fail = True

    def flaky(items: list[int]) -> list[int]:
        if fail:
            raise RuntimeError("boom")
        return items

    batcher = one_at_a_time(flaky)

    async def main():
        nonlocal fail
        with pytest.raises(TeacherError):
            await batcher.submit(1)
        fail = False
        return await batcher.submit(2)

    assert run(main()) == 2


def test_cancelled_callers_are_skipped_and_closing_fails_new_submits():
    seen: list[list[int]] = []

    def record(items: list[int]) -> list[int]:
        seen.append(list(items))
        return items

    batcher = one_at_a_time(record, max_wait_s=0.02)

    async def main():
        keep = asyncio.ensure_future(batcher.submit(1))
        drop = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        drop.cancel()
        assert await keep == 1
        await batcher.aclose()
        with pytest.raises(TeacherError, match="closed"):
            await batcher.submit(3)

    run(main())
    assert seen == [[1]]


def test_the_batcher_works_across_event_loops():
    batcher = one_at_a_time(lambda items: [i + 1 for i in items])
    assert run(batcher.submit(1)) == 2
    assert run(batcher.submit(2)) == 3


# -- many batches at once, as the Batch API teacher runs it ---------------------------------


def concurrent(run_batch: Callable[[list[int]], Any], **options: Any) -> Coalescer[int, Any]:
    return Coalescer(run_batch, name="test batch", **options)


def test_a_full_batch_starts_at_once_without_waiting_for_the_timer():
    async def double(items: list[int]) -> list[int]:
        return [i * 2 for i in items]

    batcher = concurrent(double, max_items=5, max_wait_s=60.0)

    async def main():
        started = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(i) for i in range(10))), timeout=5
        )
        return results, time.perf_counter() - started

    results, elapsed = run(main())
    assert results == [i * 2 for i in range(10)]
    assert batcher.batch_sizes == [5, 5]
    assert elapsed < 5


def test_a_partial_batch_starts_when_the_oldest_item_waited_max_wait_s():
    started_at: list[float] = []

    async def record(items: list[int]) -> list[int]:
        started_at.append(time.perf_counter())
        return items

    batcher = concurrent(record, max_items=100, max_wait_s=0.2)

    async def main():
        first = asyncio.ensure_future(batcher.submit(1))
        t0 = time.perf_counter()
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(batcher.submit(2))  # joins the first's batch
        results = await asyncio.gather(first, second)
        return results, t0

    results, t0 = run(main())
    assert results == [1, 2]
    assert batcher.batch_sizes == [2]
    assert 0.15 <= started_at[0] - t0 < 1.0  # the oldest item's deadline, not the newest's


def test_batches_run_concurrently_when_unbounded():
    active = 0
    most = 0

    async def slow(items: list[int]) -> list[int]:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.05)
        active -= 1
        return items

    batcher = concurrent(slow, max_items=2, max_wait_s=0.0)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(8)))

    assert run(main()) == list(range(8))
    assert most > 1
    assert sorted(batcher.batch_sizes) == [2, 2, 2, 2]


def test_per_item_errors_reach_only_their_callers_and_keep_teacher_errors_as_they_are():
    own = TeacherError("line 2 was refused")

    async def mixed(items: list[int]) -> list[Any]:
        return [own if i == 2 else KeyError(i) if i == 4 else i for i in items]

    batcher = concurrent(mixed, max_items=10, max_wait_s=0.01)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)

    results = run(main())
    assert [results[i] for i in (0, 1, 3, 5)] == [0, 1, 3, 5]
    assert results[2] is own
    assert isinstance(results[4], TeacherError) and "KeyError" in str(results[4])


def test_a_cancelled_caller_is_left_out_and_closing_fails_the_queued_ones():
    seen: list[list[int]] = []

    async def record(items: list[int]) -> list[int]:
        seen.append(list(items))
        return items

    batcher = concurrent(record, max_items=10, max_wait_s=0.05)

    async def main():
        kept = asyncio.ensure_future(batcher.submit(1))
        gone = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        assert await kept == 1
        queued = asyncio.ensure_future(batcher.submit(3))
        await asyncio.sleep(0)
        await batcher.aclose()
        with pytest.raises(TeacherError, match="closed"):
            await queued

    run(main())
    assert seen == [[1]]


def test_closing_can_cancel_running_batches():
    async def forever(items: list[int]) -> list[int]:
        await asyncio.sleep(3600)
        return items

    batcher = concurrent(forever, max_items=1, max_wait_s=0.0)

    async def main():
        waiting = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.02)  # the batch is running
        await asyncio.wait_for(batcher.aclose(cancel_running=True), timeout=5)
        with pytest.raises(TeacherError, match="closed"):
            await waiting

    run(main())
