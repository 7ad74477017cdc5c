"""The ``ray`` executor, ``http`` engine: jobs on Ray actors spread over the cluster's nodes.

Each of ``executor.workers`` actors (:class:`~selfinstruct.executors.ray_worker.JobWorker`)
runs many jobs at once with its own async teachers, so prompt rendering, parsing, filters and
HTTP client work spread over nodes. The driver sends each kept instruction to the actor with
the fewest jobs in flight and records what comes back. A job lost with its actor or node
(``RayActorError`` and kin) is sent again to a live actor, up to ``executor.max_job_attempts``
times; the lost actor gets no job until it answers again (Ray restarts it where there is
room). A job's rows and calls reach the run only through the driver, so a lost attempt
leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

from selfinstruct.errors import InputError, TeacherError
from selfinstruct.executors.base import ExecutorContext
from selfinstruct.executors.ray_cluster import RayConnection, connect, ray_version
from selfinstruct.executors.ray_worker import JobOutcome, JobWorker, WorkerSpec, schema_styles
from selfinstruct.jobs import JobRunner
from selfinstruct.records import Instance, Instruction
from selfinstruct.stages import Job
from selfinstruct.teachers.base import Teacher

#: seconds before a lost job is sent again (doubling with each attempt)
RETRY_PAUSE_S = 0.5


class RayHttpExecutor:
    """Jobs on Ray actors; the driver keeps the files (see the module docstring)."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context
        self.settings = context.config.executor
        self.connection: RayConnection | None = None
        self.address: str | None = None
        self.workers: list[Any] = []
        self.in_flight: list[int] = []
        self.lost: dict[int, asyncio.Task[None]] = {}  # workers set aside, each with its probe
        self.rejoined = asyncio.Event()
        self.nodes: dict[str, Counter[str]] = defaultdict(Counter)
        self.lost_attempts = 0

    async def start(self, jobs: JobRunner) -> None:
        self.connection = connect(self.settings)  # a few seconds, before any work is queued
        self.address = self.connection.address
        import ray  # after connect(), which sets what Ray reads when first imported

        spec = WorkerSpec(
            config=self.context.config,
            seeds=self.context.seeds,
            sequence=tuple(self.context.sequence),
            prompt_sha256=dict(self.context.prompt_sha256),
            first=jobs.first,
            models=dict(jobs.models),
            schema_styles=schema_styles(jobs),
        )
        actor = ray.remote(JobWorker).options(
            num_cpus=self.settings.worker_cpus,
            max_restarts=-1,  # a lost actor comes back (elsewhere if its node is gone)
            max_task_retries=0,  # a lost job is resent by expand(), which counts it
            max_concurrency=10_000,
            scheduling_strategy="SPREAD",
        )
        self.workers = [actor.remote(spec) for _ in range(self.settings.workers)]
        self.in_flight = [0] * len(self.workers)
        await self._wait_for_workers()

    async def _wait_for_workers(self) -> None:
        """Every actor built, or a one-line reason: Ray waits forever for CPUs it lacks."""
        import ray

        ready = asyncio.gather(*(worker.node_id.remote() for worker in self.workers))
        timeout = self.settings.start_timeout_s
        try:
            await asyncio.wait_for(ready, timeout=timeout)
        except asyncio.TimeoutError:
            raise InputError(
                f"Ray placed fewer than {len(self.workers)} workers of "
                f"{self.settings.worker_cpus} CPU each within {timeout:.0f} s; "
                "lower executor.workers or executor.worker_cpus, or add nodes",
                field="executor.workers",
            ) from None
        except ray.exceptions.RayError as exc:  # the constructor raised (say, other templates)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise InputError(
                f"a Ray worker could not start: {lines[-1] if lines else type(exc).__name__}",
                field="executor",
            ) from None

    def slots(self, teacher: Teacher) -> int:
        """Each worker has teachers of its own, as many requests in flight as the driver's."""
        return teacher.max_concurrency * len(self.workers)

    async def expand(self, row: Instruction) -> tuple[Job, list[Instance]]:
        self.context.check_budget()
        outcome = await self._run_remote(row)
        self._record(outcome)
        outcome.raise_error()
        return outcome.job, outcome.kept

    async def _run_remote(self, row: Instruction) -> JobOutcome:
        import ray
        from ray.exceptions import RayTaskError

        attempts = self.settings.max_job_attempts
        for attempt in range(1, attempts + 1):
            index = await self._live_worker()
            self.in_flight[index] += 1
            ref = self.workers[index].run.remote(row)
            try:
                outcome: JobOutcome = await ref
                return outcome
            except asyncio.CancelledError:
                ray.cancel(ref)
                raise
            except RayTaskError as exc:  # the actor's code raised: not a lost worker
                raise TeacherError(f"job {row.id} failed on Ray: {exc}") from None
            except ray.exceptions.RayError as exc:  # the actor or its node is gone
                self.lost_attempts += 1
                self._set_aside(index)
                if attempt == attempts:
                    raise TeacherError(
                        f"job {row.id} lost with its Ray worker {attempts} times: {exc}"
                    ) from None
                await asyncio.sleep(RETRY_PAUSE_S * 2 ** (attempt - 1))
            finally:
                self.in_flight[index] -= 1
        raise AssertionError("unreachable")

    async def _live_worker(self) -> int:
        """The live worker with the fewest jobs in flight; while none is live, wait for one."""
        while True:
            live = [k for k in range(len(self.workers)) if k not in self.lost]
            if live:
                return min(live, key=self.in_flight.__getitem__)
            self.rejoined.clear()
            await self.rejoined.wait()

    def _set_aside(self, index: int) -> None:
        """Send no job to a worker that lost one until it answers again: Ray restarts it
        where there is room, which may take a while or, with no room, never happen."""
        if index not in self.lost:
            self.lost[index] = asyncio.create_task(self._rejoin(index))

    async def _rejoin(self, index: int) -> None:
        import ray

        while True:
            try:
                await self.workers[index].node_id.remote()
                break
            except ray.exceptions.RayError:
                await asyncio.sleep(1.0)
        del self.lost[index]
        self.rejoined.set()

    def _record(self, outcome: JobOutcome) -> None:
        """Write the job's teacher calls, renaming an id already taken in the run (a job redone
        after a resume) in the calls and in the job's provenance alike."""
        renamed: dict[str, str] = {}
        for call in outcome.calls:
            fresh = self.context.new_call_id(call.id)
            if fresh != call.id:
                renamed[call.id] = fresh
                call = call.model_copy(update={"id": fresh})
            self.context.record_call(call)
        if renamed:
            job = outcome.job
            job.calls[:] = [renamed.get(ident, ident) for ident in job.calls]
        node = self.nodes[outcome.node]
        node["jobs"] += 1
        node["requests"] += len(outcome.calls)
        node["failed_requests"] += sum(1 for call in outcome.calls if call.error)
        node["examples"] += len(outcome.kept)

    def stats(self) -> dict[str, Any]:
        return {
            "kind": "ray",
            "engine": "http",
            "ray_version": ray_version(),
            "address": self.address,
            "workers": len(self.workers),
            "lost_job_attempts": self.lost_attempts,
            "nodes": {node: dict(counts) for node, counts in sorted(self.nodes.items())},
        }

    async def aclose(self) -> None:
        if self.connection is None:
            return
        import ray

        for probe in self.lost.values():
            probe.cancel()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.aclose.remote(), timeout=5)
            except Exception:  # a dead worker needs no closing
                continue
        for worker in self.workers:
            ray.kill(worker)
        await asyncio.to_thread(self.connection.close)
        self.connection = None
