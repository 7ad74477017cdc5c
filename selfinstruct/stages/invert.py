"""Inversion: turn an (instruction, input, output) around into a task that produces the input
from the output (question answering becomes question writing).

After a job's outputs, one request shows the teacher the instruction and one answered
instance that has an input, and asks for the instruction of the reverse task, so that it
reads naturally. The candidate rides back on the job with its instance (the old output as
input, the old input as output); the run judges it like a stage-1 candidate.
"""

from __future__ import annotations

from typing import ClassVar

from selfinstruct.records import Instance
from selfinstruct.stages.base import Job, StageContext, Template, one_line, request_seed
from selfinstruct.stages.derived import Derived, read_instruction
from selfinstruct.teachers.base import Completion, Request


def source_instance(job: Job) -> Instance | None:
    """The job's first answered instance with an input and an output, or None."""
    for instance in job.answered():
        if instance.input.strip() and instance.output.strip():
            return instance
    return None


class InvertStage:
    """Adds one inverted candidate, with its instance, to ``job.derived``."""

    name: ClassVar[str] = "invert"
    #: derive only from instances that passed the instance filters (and the judge, if on)
    after_instance_filters: ClassVar[bool] = True
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "invert", frozenset({"instruction", "input", "output"})),
    )

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]

    def requests(self, job: Job) -> list[Request]:
        source = source_instance(job)
        if job.instruction.origin not in ("self-instruct", "evolve") or source is None:
            return []
        job.prompts[self.name] = self.prompt.sha
        return [
            self.prompt.request(
                seed=request_seed(job.rng),
                instruction=one_line(job.instruction.instruction),
                input=source.input.strip(),
                output=source.output.strip(),
            )
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        source = source_instance(job)
        if not completions or source is None:
            return
        (completion,) = completions
        text, problem = read_instruction(completion)
        if problem is not None:
            job.reject(self.name, problem, text)
            return
        inverted = Instance(input=source.output.strip(), output=source.input.strip())
        job.derived.append(
            Derived(origin="invert", instruction=text, instance=inverted, source=source)
        )
