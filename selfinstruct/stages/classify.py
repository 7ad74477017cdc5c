"""Classification identification: is a new instruction a classification task (finite labels)?

The answer decides how stage 2 writes its instances: output-first (label, then input) for
classification tasks, input-first otherwise. Few-shot demonstrations are seed tasks, a third
classification and the rest not, drawn once per run with a seeded RNG.
"""

from __future__ import annotations

import random

from selfinstruct.records import SeedTask
from selfinstruct.stages.common import StagePrompt, one_line, request_seed
from selfinstruct.stages.parsing import parse_yes_no
from selfinstruct.teachers.base import Completion, Request

PLACEHOLDERS = {"demos", "instruction"}


def pick_demos(rng: random.Random, seeds: list[SeedTask], count: int) -> list[SeedTask]:
    """Up to ``count`` seeds: a third classification tasks, the rest not (most tasks are not)."""
    yes = [task for task in seeds if task.is_classification]
    no = [task for task in seeds if not task.is_classification]
    picked = rng.sample(yes, min(count // 3, len(yes)))
    picked += rng.sample(no, min(count - len(picked), len(no)))
    rng.shuffle(picked)
    return picked


class ClassifyStage:
    def __init__(self, prompt: StagePrompt) -> None:
        self.prompt = prompt

    def request(self, instruction: str, demos: list[SeedTask], rng: random.Random) -> Request:
        data = [
            {"instruction": one_line(task.instruction), "is_classification": task.is_classification}
            for task in demos
        ]
        return self.prompt.request(
            seed=request_seed(rng), demos=data, instruction=one_line(instruction)
        )

    def parse(self, completion: Completion) -> bool | None:
        """True / False, or None when the reply says neither (the pipeline treats it as No)."""
        return parse_yes_no(completion.text)
