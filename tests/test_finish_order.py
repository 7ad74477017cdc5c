"""FinishOrder: finished jobs are written in the order they started, and a re-run's cache miss
waits while the jobs before it could reach the target alone."""

from __future__ import annotations

import asyncio
import random

from selfinstruct.jobs import FinishOrder
from selfinstruct.records import Instance, Instruction
from selfinstruct.stages.base import Job


def job(ident: str) -> Job:
    row = Instruction(id=ident, instruction=f"task {ident}", request=0, model="m", max_rouge=0.0)
    return Job(instruction=row, rng=random.Random(0))


def finished(ident: str, examples: int) -> tuple[Job, list[Instance]]:
    return job(ident), [Instance(input="", output=f"out {k}") for k in range(examples)]


async def run_jobs(
    order: FinishOrder, plan: list[tuple[str, float, int | None]], written: list[str]
) -> None:
    """Start every (id, seconds, examples or None for an error) job in list order."""

    async def one(ident: str, seconds: float, examples: int | None) -> tuple[Job, list[Instance]]:
        await asyncio.sleep(seconds)
        if examples is None:
            raise RuntimeError("teacher failed")
        return finished(ident, examples)

    def write(done: Job, kept: list[Instance]) -> None:
        written.append(done.instruction.id)

    tasks = [asyncio.create_task(order.run(i, one(i, s, n), write)) for i, s, n in plan]
    await asyncio.gather(*tasks, return_exceptions=True)


def test_jobs_are_written_in_the_order_they_started_whatever_order_they_finish() -> None:
    written: list[str] = []
    order = FinishOrder(target=10, done=lambda: len(written))
    plan = [("a", 0.03, 1), ("b", 0.0, 2), ("c", 0.02, None), ("d", 0.01, 0), ("e", 0.0, 1)]
    asyncio.run(run_jobs(order, plan, written))
    # c failed: it releases d and e; d (no examples) is still handed back to be written
    assert written == ["a", "b", "d", "e"]
    assert order.held_with_examples == 0


def test_held_jobs_with_examples_are_counted_while_they_wait() -> None:
    async def scenario() -> list[int]:
        written: list[str] = []
        order = FinishOrder(target=10, done=lambda: len(written))
        gate = asyncio.Event()

        async def slow() -> tuple[Job, list[Instance]]:
            await gate.wait()
            return finished("a", 1)

        async def quick(ident: str, n: int) -> tuple[Job, list[Instance]]:
            return finished(ident, n)

        def write(done: Job, kept: list[Instance]) -> None:
            written.append(done.instruction.id)

        seen = []
        first = asyncio.create_task(order.run("a", slow(), write))
        await asyncio.sleep(0)
        await order.run("b", quick("b", 3), write)
        await order.run("c", quick("c", 0), write)
        seen.append(order.held_with_examples)  # b waits for a (c has no examples)
        gate.set()
        await first
        seen.append(order.held_with_examples)
        assert written == ["a", "b", "c"]
        return seen

    assert asyncio.run(scenario()) == [1, 0]


def test_a_cancelled_job_releases_the_finished_ones_after_it() -> None:
    async def scenario() -> list[str]:
        written: list[str] = []
        order = FinishOrder(target=10, done=lambda: len(written))

        async def forever() -> tuple[Job, list[Instance]]:
            await asyncio.Event().wait()
            raise AssertionError

        async def quick() -> tuple[Job, list[Instance]]:
            return finished("b", 1)

        def write(done: Job, kept: list[Instance]) -> None:
            written.append(done.instruction.id)

        stuck = asyncio.create_task(order.run("a", forever(), write))
        await asyncio.sleep(0)
        await order.run("b", quick(), write)
        assert written == []
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)
        return written

    assert asyncio.run(scenario()) == ["b"]


def test_a_miss_waits_while_the_jobs_before_it_can_reach_the_target_alone() -> None:
    async def scenario() -> list[str]:
        events: list[str] = []
        written: list[str] = []
        order = FinishOrder(target=2, done=lambda: len(written))
        results = {ident: asyncio.get_running_loop().create_future() for ident in "abc"}

        async def body(ident: str) -> tuple[Job, list[Instance]]:
            await order.gate([ident])()  # the miss: sent only once the job is needed
            events.append(f"{ident} sends")
            return await results[ident]

        def write(done: Job, kept: list[Instance]) -> None:
            if kept:
                written.append(done.instruction.id)

        tasks = [asyncio.create_task(order.run(i, body(i), write)) for i in "abc"]
        await asyncio.sleep(0.01)
        assert events == ["a sends", "b sends"]  # a and b could make the target of 2
        assert not order.needed("c") and order.needed("a")
        results["a"].set_result(finished("a", 0))  # a ends with no examples: c is needed now
        await asyncio.sleep(0.01)
        assert events[-1] == "c sends" and order.needed("c")
        results["b"].set_result(finished("b", 1))
        results["c"].set_result(finished("c", 2))
        await asyncio.gather(*tasks)
        assert written == ["b", "c"]
        return events

    asyncio.run(scenario())


def test_an_instruction_no_job_runs_for_is_always_needed() -> None:
    order = FinishOrder(target=1, done=lambda: 0)
    assert order.needed("i000001")
    asyncio.run(order.gate(["i000001"])())
