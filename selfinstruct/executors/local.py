"""The default executor: every job runs in the driver's event loop with the driver's teachers."""

from __future__ import annotations

from typing import Any

from selfinstruct.executors.base import ExecutorContext
from selfinstruct.jobs import JobRunner
from selfinstruct.records import Instance, Instruction
from selfinstruct.stages import Job
from selfinstruct.teachers.base import Teacher


class LocalExecutor:
    """Jobs as coroutines of the driver (the teacher's own limit bounds what is in flight)."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context

    async def start(self, jobs: JobRunner) -> None:
        self.jobs = jobs

    def slots(self, teacher: Teacher) -> int:
        return teacher.max_concurrency

    async def expand(self, row: Instruction) -> tuple[Job, list[Instance]]:
        job = self.jobs.new_job(row)
        return job, await self.jobs.run(job)

    def stats(self) -> dict[str, Any]:
        return {"kind": "local"}

    async def aclose(self) -> None:
        return None
