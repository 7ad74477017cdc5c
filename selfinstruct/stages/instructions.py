"""Stage 1: ask the teacher for new task instructions, shown k demonstrations.

Each request shows ``num_seed_demos`` seed instructions and ``num_machine_demos`` earlier
machine instructions (6 + 2 in the paper), sampled with a per-request RNG, and asks for up to
``num_new`` new ones. The reply is parsed into candidate instruction texts; the pipeline
filters them.
"""

from __future__ import annotations

import random

from selfinstruct.stages.common import StagePrompt, one_line, request_seed
from selfinstruct.stages.parsing import parse_task_list
from selfinstruct.teachers.base import Completion, Request

PLACEHOLDERS = {"demos", "num_new"}


def sample_demos(
    rng: random.Random,
    seed_pool: list[str],
    machine_pool: list[str],
    num_seed: int,
    num_machine: int,
) -> list[str]:
    """Pick demonstrations: machine tasks when there are enough, seed tasks fill the rest."""
    machine = rng.sample(machine_pool, min(num_machine, len(machine_pool)))
    wanted_seeds = min(num_seed + num_machine - len(machine), len(seed_pool))
    demos = rng.sample(seed_pool, wanted_seeds) + machine
    rng.shuffle(demos)
    return [one_line(demo).rstrip(":") for demo in demos]


class InstructionStage:
    def __init__(self, prompt: StagePrompt, num_new: int) -> None:
        self.prompt = prompt
        self.num_new = num_new

    def request(self, demos: list[str], rng: random.Random) -> Request:
        return self.prompt.request(seed=request_seed(rng), demos=demos, num_new=self.num_new)

    def parse(self, completion: Completion) -> list[str]:
        """Candidate instructions; the last one is dropped if the reply was cut by max_tokens."""
        items = parse_task_list(completion.text, truncated=completion.finish_reason == "length")
        return [one_line(item) for item in items][: self.num_new]
