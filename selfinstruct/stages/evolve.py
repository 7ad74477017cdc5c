"""Evol-Instruct (WizardLM): rewrite a kept instruction into a harder or a new one.

After a job's outputs, one request rewrites its instruction by one operation, drawn per
instruction from ``stages.evolve.operations``: in depth (add a constraint, deepen,
concretise, ask for more reasoning steps, complicate the input) or in breadth (a new task
in the same domain). The rewrite rides back on the job as a :class:`Derived` candidate; the
run eliminates failed evolutions, judges the rest like stage-1 candidates and sends the kept
ones through the sequence, to be evolved again until round ``stages.evolve.rounds``.
"""

from __future__ import annotations

import random
from typing import ClassVar

from selfinstruct.config_sections import EvolveStageConfig
from selfinstruct.stages.base import Job, StageContext, Template, one_line, request_seed
from selfinstruct.stages.derived import Derived, read_instruction
from selfinstruct.teachers.base import Completion, Request


class EvolveStage:
    """Adds one evolved candidate to ``job.derived`` while the instruction's round allows."""

    name: ClassVar[str] = "evolve"
    #: derive only from instances that passed the instance filters (and the judge, if on)
    after_instance_filters: ClassVar[bool] = True
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "evolve", frozenset({"instruction", "operation"})),
    )

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]
        settings = context.settings
        assert isinstance(settings, EvolveStageConfig)
        self.rounds = settings.rounds
        self.operations = list(settings.operations)
        self.seed = context.config.seed

    def operation(self, job: Job) -> str:
        """The operation for this instruction: drawn from a seeded RNG of its own, so the same
        instruction always gets the same one (on resume, and between requests and parse)."""
        rng = random.Random(f"{self.seed}:evolve:{job.instruction.id}")
        return rng.choice(self.operations)

    def requests(self, job: Job) -> list[Request]:
        if job.instruction.origin not in ("self-instruct", "evolve"):
            return []
        if job.instruction.round >= self.rounds or not job.answered():
            return []
        job.prompts[self.name] = self.prompt.sha
        instruction = one_line(job.instruction.instruction)
        operation = self.operation(job)
        return [
            self.prompt.request(
                seed=request_seed(job.rng), instruction=instruction, operation=operation
            )
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        if not completions:
            return
        (completion,) = completions
        text, problem = read_instruction(completion)
        operation = self.operation(job)
        if problem is not None:
            job.reject(self.name, problem, text, {"operation": operation})
            return
        job.derived.append(
            Derived(
                origin="evolve",
                instruction=text,
                round=job.instruction.round + 1,
                operation=operation,
            )
        )
