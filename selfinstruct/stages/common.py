"""What every stage shares: a checked template, the API shape to render for, and sampling."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from selfinstruct.config import SamplingConfig
from selfinstruct.prompts import PromptTemplate
from selfinstruct.records import SeedTask, Stage
from selfinstruct.teachers.base import Api, Request

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class StagePrompt:
    """A stage's template bound to the teacher's API and the configured sampling."""

    stage: Stage
    template: PromptTemplate
    api: Api
    sampling: SamplingConfig

    def request(self, seed: int | None = None, **values: Any) -> Request:
        return self.template.request(self.stage, self.api, self.sampling, seed=seed, **values)


def one_line(text: str) -> str:
    """Collapse whitespace (demonstrations are shown one per line, as in the paper)."""
    return _SPACES.sub(" ", text).strip()


def task_demo(task: SeedTask, max_instances: int = 2) -> dict[str, Any]:
    """A seed task as template data: ``instruction``, ``instances`` [{input, output}], flag."""
    return {
        "instruction": one_line(task.instruction),
        "instances": [
            {"input": instance.input.strip(), "output": instance.output.strip()}
            for instance in task.instances[:max_instances]
        ],
        "is_classification": task.is_classification,
    }


def request_seed(rng: random.Random) -> int:
    """A per-request sampling seed drawn from the stage's RNG (reproducible on seedable servers)."""
    return rng.randrange(2**31)
