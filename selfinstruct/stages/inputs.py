"""Stage 2: instances for a new instruction, classification-aware.

* classification tasks are generated output-first: the teacher writes a class label, then an
  input for that label; the label is the instance's output (stage 3 is skipped for it);
* other tasks are generated input-first: the teacher writes inputs only, and stage 3 answers
  each. A task that needs no input gets an empty input.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from selfinstruct.records import SeedTask
from selfinstruct.stages.common import StagePrompt, one_line, request_seed, task_demo
from selfinstruct.stages.parsing import parse_inputs, parse_label_input_pairs
from selfinstruct.teachers.base import Completion, Request

PLACEHOLDERS = {"demos", "instruction", "num_instances"}


@dataclass(frozen=True)
class Draft:
    """An instance under construction: ``output`` is known only for output-first drafts."""

    input: str
    output: str | None = None


def pick_demos(
    rng: random.Random, seeds: list[SeedTask], count: int, classification: bool
) -> list[SeedTask]:
    """Seeds of the same kind (classification or not) as the instruction being expanded."""
    pool = [task for task in seeds if task.is_classification == classification] or seeds
    return rng.sample(pool, min(count, len(pool)))


class InputStage:
    def __init__(self, input_first: StagePrompt, output_first: StagePrompt, limit: int) -> None:
        self.input_first = input_first
        self.output_first = output_first
        self.limit = limit

    def request(
        self,
        instruction: str,
        classification: bool,
        demos: list[SeedTask],
        rng: random.Random,
    ) -> Request:
        prompt = self.output_first if classification else self.input_first
        return prompt.request(
            seed=request_seed(rng),
            demos=[task_demo(task) for task in demos],
            instruction=one_line(instruction),
            num_instances=self.limit,
        )

    def parse(self, completion: Completion, classification: bool) -> list[Draft]:
        """Drafts in reply order; the last one is dropped when the reply was cut short."""
        if classification:
            pairs = parse_label_input_pairs(completion.text, limit=self.limit + 1)
            drafts = [Draft(input=text, output=label) for label, text in pairs]
        else:
            drafts = [
                Draft(input=text) for text in parse_inputs(completion.text, limit=self.limit + 1)
            ]
        if completion.finish_reason == "length" and len(drafts) > 1:
            drafts = drafts[:-1]
        return drafts[: self.limit]
