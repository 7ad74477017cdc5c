"""One kept instruction's work: the stage sequence, then the instance filters.

Everything here is per instruction and needs nothing of the run but a way to send a request
(``send``) and to name a call (``new_call_id``), so an executor can run it where it likes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from selfinstruct.config import FilterConfig
from selfinstruct.filters.instances import filter_instances
from selfinstruct.records import Instance, Instruction
from selfinstruct.stages import Job, Stage
from selfinstruct.stages.base import render_instance
from selfinstruct.teachers.base import Completion, Request

#: send(stage, request, call id, instruction ids served) -> the teacher's completion
Send = Callable[[str, Request, str, Sequence[str]], Awaitable[Completion]]


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
        (``.<k>`` when a stage sends several) and listed in the job's provenance.
        """
        served = [job.instruction.id]
        for stage in self.sequence:
            requests = stage.requests(job)
            if requests:
                job.models[stage.name] = self.models[stage.name]
            base = f"{job.instruction.id}.{stage.name}"
            ids = [
                self.new_call_id(base if len(requests) == 1 else f"{base}.{k}")
                for k in range(len(requests))
            ]
            job.calls.extend(ids)
            completions = await asyncio.gather(
                *(
                    self.send(stage.name, request, ident, served)
                    for request, ident in zip(requests, ids, strict=True)
                )
            )
            stage.parse(job, list(completions))
        kept, dropped = filter_instances(job.answered(), self.filters)
        for instance, drop in dropped:
            shown = render_instance(instance.input, instance.output)
            job.reject(job.answered_by, drop.reason, shown, drop.details)
        return kept
