"""The vLLM teacher's micro-batcher (plain batch functions, no vLLM) and its setup errors."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from selfinstruct.config import TeacherConfig
from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers import make_teacher
from selfinstruct.teachers.base import Completion, Request, Teacher
from selfinstruct.teachers.vllm import DEFAULT_MAX_BATCH, MicroBatcher, VllmTeacher


def run(coro):
    return asyncio.run(coro)


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


def req(i: int) -> Request:
    return Request(stage="instructions", prompt=str(i))


def test_concurrent_submits_are_coalesced_in_order():
    calls: list[list[Request]] = []
    batcher = MicroBatcher(echo_batch(calls), max_batch_size=64, max_wait_s=0.01)

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
    batcher = MicroBatcher(echo_batch(calls), max_batch_size=8, max_wait_s=0.001)

    async def main():
        return await asyncio.gather(*(batcher.submit(req(i)) for i in range(30)))

    results = run(main())
    assert [r.text for r in results] == [f"echo {i}" for i in range(30)]
    assert batcher.batch_sizes == [8, 8, 8, 6]
    assert [r.prompt for call in calls for r in call] == [str(i) for i in range(30)]


def test_requests_arriving_during_a_batch_form_the_next_batch():
    calls: list[list[Request]] = []
    batcher = MicroBatcher(echo_batch(calls, delay_s=0.05), max_wait_s=0.001)

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

    batcher = MicroBatcher(run_batch, max_batch_size=4, max_wait_s=0.0)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(20)))

    assert run(main()) == [i * 2 for i in range(20)]
    assert most == 1
    assert sum(batcher.batch_sizes) == 20


def test_an_exception_in_run_batch_reaches_every_caller_as_teacher_error():
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("CUDA out of memory\nlots of detail")

    batcher = MicroBatcher(broken, max_wait_s=0.005)

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

    batcher = MicroBatcher(picky)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)

    results = run(main())
    assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
    assert isinstance(results[3], TeacherError) and "bad 3" in str(results[3])


def test_a_wrong_number_of_results_fails_the_batch():
    batcher = MicroBatcher(lambda items: items[:-1])

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, TeacherError) for r in run(main()))


def test_the_batcher_keeps_working_after_a_failed_batch():
    fail = True

    def flaky(items: list[int]) -> list[int]:
        if fail:
            raise RuntimeError("boom")
        return items

    batcher = MicroBatcher(flaky)

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

    batcher = MicroBatcher(record, max_wait_s=0.02)

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
    batcher = MicroBatcher(lambda items: [i + 1 for i in items])
    assert run(batcher.submit(1)) == 2
    assert run(batcher.submit(2)) == 3


# -- the vLLM teacher itself: setup errors, and its batch function wired to the batcher ------


def test_factory_builds_the_vllm_teacher_without_importing_vllm():
    teacher = make_teacher(TeacherConfig(kind="vllm", model="Qwen/Qwen2.5-0.5B-Instruct"))
    assert isinstance(teacher, VllmTeacher)
    assert isinstance(teacher, Teacher)
    assert teacher.api == "completions"
    assert teacher.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert teacher.max_concurrency == DEFAULT_MAX_BATCH
    big = VllmTeacher(TeacherConfig(kind="vllm", model="m", max_concurrency=1024))
    assert big.max_concurrency == big.batcher.max_batch_size == 1024


def test_missing_vllm_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    teacher = VllmTeacher(TeacherConfig(kind="vllm", model="Qwen/Qwen2.5-0.5B-Instruct"))
    with pytest.raises(TeacherUnavailable) as caught:
        run(teacher.start())
    message = str(caught.value)
    assert "selfinstruct[vllm]" in message
    assert "CUDA GPU" in message
    assert "vllm serve" in message and "--base-url" in message


def test_vllm_needs_a_model():
    with pytest.raises(TeacherUnavailable, match=r"teacher\.model"):
        run(VllmTeacher(TeacherConfig(kind="vllm")).start())


def test_complete_before_start_is_a_teacher_error():
    teacher = VllmTeacher(TeacherConfig(kind="vllm", model="m"))
    with pytest.raises(TeacherError, match="not started"):
        run(teacher.complete(req(1)))
