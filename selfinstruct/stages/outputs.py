"""Stage 3: the teacher answers one (instruction, input) per request."""

from __future__ import annotations

import random

from selfinstruct.records import SeedTask
from selfinstruct.stages.common import StagePrompt, one_line, request_seed
from selfinstruct.stages.parsing import clean_output
from selfinstruct.teachers.base import Completion, Request

PLACEHOLDERS = {"demos", "instruction", "input"}


def pick_demos(rng: random.Random, seeds: list[SeedTask], count: int) -> list[SeedTask]:
    """Non-classification seeds whose first output is short enough to be a good example."""
    pool = [
        task
        for task in seeds
        if not task.is_classification and len(task.instances[0].output.split()) <= 120
    ] or seeds
    return rng.sample(pool, min(count, len(pool)))


class OutputStage:
    def __init__(self, prompt: StagePrompt) -> None:
        self.prompt = prompt

    def request(
        self, instruction: str, input_text: str, demos: list[SeedTask], rng: random.Random
    ) -> Request:
        data = [
            {
                "instruction": one_line(task.instruction),
                "input": task.instances[0].input.strip(),
                "output": task.instances[0].output.strip(),
            }
            for task in demos
        ]
        return self.prompt.request(
            seed=request_seed(rng),
            demos=data,
            instruction=one_line(instruction),
            input=input_text,
        )

    def parse(self, completion: Completion) -> tuple[str, str | None]:
        """The cleaned output, and a rejection reason when the reply is unusable as a whole."""
        if completion.finish_reason == "length":
            return clean_output(completion.text), "output_truncated"
        if completion.finish_reason == "content_filter":
            return "", "content_filter"
        return clean_output(completion.text), None
