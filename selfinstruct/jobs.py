"""One kept instruction's work: the stage sequence, then the instance filters.

Everything here is per instruction and needs nothing of the run but a way to send a request
(``send``) and to name a call (``new_call_id``), so an executor can run it where it likes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from selfinstruct.config_sections import FilterConfig
from selfinstruct.filters.instances import filter_instances, instance_drop
from selfinstruct.records import Instance, Instruction
from selfinstruct.stages import Job, Stage
from selfinstruct.stages.base import render_instance
from selfinstruct.teachers.base import Completion, Request

#: send(stage, request, call id, instruction ids served) -> the teacher's completion
Send = Callable[[str, Request, str, Sequence[str]], Awaitable[Completion]]


class BudgetReached(Exception):
    """Raised instead of starting a request once a cost or token cap is reached."""


@dataclass
class Schedule:
    """When to start what, from what the run has seen so far: instructions kept per stage-1
    round (prior: ``kept`` in one round; the pipeline assumes a quarter of what a round asks
    for, so a small target or a tight budget does not start with a wave of stage-1 rounds)
    and the share of jobs that end with examples (prior: all). ``slots`` is the teacher's
    concurrency; a job or a round in flight holds about one slot, and 1/8 more keep a small
    queue so that no slot idles while a job is between two stages. ``max_rounds``: rounds
    that can be in flight at once (more would wait for their demonstrations, holding room)."""

    target: int
    slots: int
    kept: float = 1.0
    rounds: int = 1
    ok: int = 4
    finished: int = 4
    max_rounds: int = 1 << 30

    @property
    def per_round(self) -> float:
        return self.kept / self.rounds

    @property
    def success(self) -> float:
        return max(0.25, self.ok / self.finished)

    def round_done(self, kept: int) -> None:
        self.kept, self.rounds = self.kept + kept, self.rounds + 1

    def job_done(self, ok: bool) -> None:
        self.ok, self.finished = self.ok + ok, self.finished + 1

    def room(self, jobs: int, rounds: int) -> int:
        return self.slots + self.slots // 8 - jobs - rounds

    def wants_job(self, done: int, jobs: int, rounds: int) -> bool:
        """Expansions first: while there is room and the jobs running (at the share that ends
        with examples) are short of the target."""
        return jobs * self.success < self.target - done and self.room(jobs, rounds) > 0

    def wants_round(self, done: int, jobs: int, rounds: int, backlog: int) -> bool:
        """While the jobs, the backlog and the rounds in flight are not expected to finish the
        target, and, unless no round is in flight: fewer than ``max_rounds`` are; there is room
        (or, without room, what is ahead is under a quarter of the slots, so the jobs would
        run dry before a round comes back); and either no instruction waits for a slot (a
        free slot would idle: at the start, all of them) or what the rounds in flight will
        keep (plus the backlog) does not already cover the slots: stage 1 feeds the jobs
        rather than running ahead of them."""
        ahead = backlog + rounds * self.per_round
        if (jobs + ahead) * self.success >= self.target - done:
            return False
        if rounds == 0:
            return True
        if rounds >= self.max_rounds:
            return False
        starved = ahead < self.slots / 4  # jobs will run out before a round comes back
        return (self.room(jobs, rounds) > 0 or starved) and (backlog == 0 or ahead < self.slots)


class FinishOrder:
    """Finished jobs handed back in the order the jobs started, whatever order they finish in.

    The run counts its target over this order, so which instructions get examples does not
    depend on timing: a re-run answered from the response cache reaches its target with the
    same jobs. A job that ends without a result (an error, a budget, a cancellation) is put back
    as ``None`` and releases the ones after it. ``done`` counts the examples-bearing jobs
    already released and written; ``target`` is how many the run wants.
    """

    def __init__(self, target: int, done: Callable[[], int]) -> None:
        self.target, self.done = target, done
        self._started = 0
        self._next = 0
        self._running: dict[str, int] = {}  # instruction id -> place, while its job runs
        self._held: dict[int, tuple[Job, list[Instance]] | None] = {}
        self._changed = asyncio.Event()
        #: finished jobs waiting for an earlier one, that have instances to write
        self.held_with_examples = 0

    async def run(
        self,
        instruction_id: str,
        job: Awaitable[tuple[Job, list[Instance]]],
        write: Callable[[Job, list[Instance]], None],
    ) -> None:
        """Run one job; ``write`` it, and every finished job it releases, in start order."""
        self._running[instruction_id] = self._started
        self._started += 1
        finished = None
        try:
            finished = await job
        finally:
            for item in self._put(instruction_id, finished):
                write(*item)

    def _put(
        self, instruction_id: str, finished: tuple[Job, list[Instance]] | None
    ) -> list[tuple[Job, list[Instance]]]:
        """Hold the instruction's finished job; return the jobs now released, in order."""
        self._held[self._running.pop(instruction_id)] = finished
        self.held_with_examples += bool(finished and finished[1])
        released = []
        while self._next in self._held:
            item = self._held.pop(self._next)
            self._next += 1
            if item is not None:
                self.held_with_examples -= bool(item[1])
                released.append(item)
        self._changed.set()
        self._changed = asyncio.Event()
        return released

    def needed(self, instruction_id: str) -> bool:
        """False while the jobs started before this one could reach the target without it."""
        place = self._running.get(instruction_id)
        if place is None:
            return True
        ahead = sum(other < place for other in self._running.values())
        ahead += sum(p < place and bool(item and item[1]) for p, item in self._held.items())
        return self.done() + ahead < self.target

    def gate(self, serves: Sequence[str]) -> Callable[[], Awaitable[None]]:
        """An awaitable that returns once the job serving ``serves`` is needed (see
        :meth:`needed`): a request the cache cannot answer waits on it during a re-run, so that
        a re-run never pays for a job its first run did not need either."""

        async def until_needed() -> None:
            while not all(self.needed(ident) for ident in serves):
                await self._changed.wait()

        return until_needed


@dataclass(frozen=True)
class JobRunner:
    """Runs jobs through ``sequence``. ``first`` is stage 1's (name, template sha) and
    ``models`` each stage's teacher model, for provenance; ``seed`` seeds each job's RNG."""

    first: tuple[str, str]
    sequence: Sequence[Stage[Job]]
    filters: FilterConfig
    models: Mapping[str, str]
    seed: int
    send: Send
    new_call_id: Callable[[str], str]

    def new_job(self, row: Instruction) -> Job:
        """A kept instruction's job; its provenance starts with the stage-1 call behind it."""
        first, sha = self.first
        return Job(
            instruction=row,
            rng=random.Random(f"{self.seed}:expand:{row.id}"),
            prompts={first: sha},
            models={first: self.models[first]},
            calls=[row.call] if row.call else [],
        )

    async def run(self, job: Job) -> list[Instance]:
        """The job's instances that pass the instance filters; the rest are in its rejections.

        Each stage's requests go out together; a call is named ``<instruction>.<stage>``
        (``.<k>`` when a stage sends several) and listed in the job's provenance. A stage
        with ``request_rounds`` > 1 is asked for requests again after each parse, until it has none.
        The instance filters run before the first stage that says ``after_instance_filters``
        (the judge: it rates only instances the filters kept), else after the last stage.
        """
        filtered = False
        for stage in self.sequence:
            if getattr(stage, "after_instance_filters", False) and not filtered:
                self.apply_instance_filters(job)
                filtered = True
            for round_ in range(getattr(stage, "request_rounds", 1)):
                requests = stage.requests(job)
                if round_ and not requests:
                    break
                await self._round(stage, job, requests)
        if not filtered:
            self.apply_instance_filters(job)
        return job.answered()

    async def _round(self, stage: Stage[Job], job: Job, requests: list[Request]) -> None:
        """Send a stage's requests together and parse the replies into the job."""
        if requests:
            job.models[stage.name] = self.models[stage.name]
        base = f"{job.instruction.id}.{stage.name}"
        ids = [
            self.new_call_id(base if len(requests) == 1 else f"{base}.{k}")
            for k in range(len(requests))
        ]
        job.calls.extend(ids)
        served = [job.instruction.id]
        if len(requests) == 1:  # most stages: no task to gather one request
            completions = [await self.send(stage.name, requests[0], ids[0], served)]
        else:
            completions = await asyncio.gather(
                *(
                    self.send(stage.name, request, ident, served)
                    for request, ident in zip(requests, ids, strict=True)
                )
            )
        stage.parse(job, list(completions))

    def apply_instance_filters(self, job: Job) -> None:
        """Drop the answered drafts (and sampled candidates) the instance filters reject,
        recording why. A draft keeps its first candidate that passes as its output."""
        for draft in job.drafts:
            if len(draft.candidates) < 2:
                continue
            checked = [
                (output, instance_drop(Instance(input=draft.input, output=output), self.filters))
                for output in draft.candidates
            ]
            passed = [output for output, drop in checked if drop is None]
            if passed:
                draft.candidates, draft.output = passed, passed[0]
            else:  # the first candidate stays the output; the filters below reject it
                checked = checked[1:]
            for output, drop in checked:
                if drop is not None:
                    shown = render_instance(draft.input, output)
                    details = {**drop.details, "sample": True}
                    job.reject(job.answered_by, drop.reason, shown, details)
        answered = [draft for draft in job.drafts if draft.output is not None]
        instances = [Instance(input=d.input, output=d.output or "") for d in answered]
        kept, dropped = filter_instances(instances, self.filters)
        for instance, drop in dropped:
            shown = render_instance(instance.input, instance.output)
            job.reject(job.answered_by, drop.reason, shown, drop.details)
        kept_ids = {id(instance) for instance in kept}
        for draft, instance in zip(answered, instances, strict=True):
            if id(instance) not in kept_ids:
                job.drop(draft)
