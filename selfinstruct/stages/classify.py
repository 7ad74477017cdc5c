"""Classification identification: is a new instruction a classification task (finite labels)?

The answer decides how stage 2 writes its instances: output-first (label, then input) for
classification tasks, input-first otherwise. Few-shot demonstrations are seed tasks, a third
classification and the rest not, drawn once per run (every request shares one prompt prefix,
which servers with prefix caching evaluate once). In structured mode the reply is
:class:`~selfinstruct.records.ClassifyReply` JSON.
"""

from __future__ import annotations

import random
import re
from typing import ClassVar

from selfinstruct.records import ClassifyReply, SeedTask
from selfinstruct.stages.base import (
    Job,
    StageContext,
    StagePrompt,
    Template,
    one_line,
    request_seed,
)
from selfinstruct.stages.structured import read_reply
from selfinstruct.stages.text import split_lines, strip_emphasis, strip_quotes
from selfinstruct.teachers.base import Completion, Request

_PLACEHOLDERS = frozenset({"demos", "instruction"})


def pick_demos(rng: random.Random, seeds: list[SeedTask], count: int) -> list[SeedTask]:
    """Up to ``count`` seeds: a third classification tasks, the rest not (most tasks are not)."""
    yes = [task for task in seeds if task.is_classification]
    no = [task for task in seeds if not task.is_classification]
    picked = rng.sample(yes, min(count // 3, len(yes)))
    picked += rng.sample(no, min(count - len(picked), len(no)))
    rng.shuffle(picked)
    return picked


class ClassifyStage:
    """Sets ``job.is_classification`` (an unclear answer counts as No)."""

    name: ClassVar[str] = "classify"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "classify", _PLACEHOLDERS),
        Template("structured_prompt", "classify.structured", _PLACEHOLDERS, ClassifyReply),
    )

    def __init__(self, context: StageContext) -> None:
        self.text_prompt = context.prompts["prompt"]
        self.structured_prompt = context.prompts.get("structured_prompt")
        self.mode = context.mode
        demos = pick_demos(context.demo_rng, context.seeds, context.config.classify_demos)
        self.demos = [
            {"instruction": one_line(task.instruction), "is_classification": task.is_classification}
            for task in demos
        ]

    @property
    def prompt(self) -> StagePrompt:
        """The template in use: the structured one once the mode says so."""
        if self.mode.structured and self.structured_prompt is not None:
            return self.structured_prompt
        return self.text_prompt

    def requests(self, job: Job) -> list[Request]:
        job.prompts[self.name] = self.prompt.sha
        return [
            self.prompt.request(
                seed=request_seed(job.rng),
                demos=self.demos,
                instruction=one_line(job.instruction.instruction),
            )
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        (completion,) = completions
        if self.mode.structured:
            job.is_classification = read_classify_reply(completion.text)
        else:
            job.is_classification = bool(parse_yes_no(completion.text))


def read_classify_reply(text: str) -> bool:
    """A structured reply's answer; a reply that is not valid JSON is read as free text
    (an unclear answer counts as No)."""
    reply, _ = read_reply(ClassifyReply, text)
    if reply is not None:
        return reply.is_classification
    if match := re.search(r'"is_classification"\s*:\s*(true|false)', text):
        return match.group(1) == "true"
    return bool(parse_yes_no(text))


# ------------------------------------------------------------ the reply's parser

_ANSWER_LABEL_RE = re.compile(
    r"^(?:(?:answer|a|output|response|result|classification)\s*[:：\-]"
    r"|is it (?:a )?classification(?: task)?\s*[?:：]*)\s*",
    re.IGNORECASE,
)
_YES_NO_RE = re.compile(r"^(yes|no)(?![\w'’-])", re.IGNORECASE)


def parse_yes_no(text: str) -> bool | None:
    """``Yes`` → True, ``No`` → False, anything else (``Maybe``, ``""``) → None.

    Looks at the first non-blank line after markdown, quotes and an ``Answer:`` label
    are removed: ``" yes."``, ``"No, it is not"``, ``"**Yes**"``, ``"Answer: No"``.
    """
    for raw in split_lines(text):
        line = raw.strip()
        if not line:
            continue
        for _ in range(3):
            cleaned = _ANSWER_LABEL_RE.sub("", strip_quotes(strip_emphasis(line))).strip()
            cleaned = cleaned.lstrip("*_\"'`“‘([ ").strip()
            if cleaned == line:
                break
            line = cleaned
        match = _YES_NO_RE.match(line)
        if match is None:
            return None
        return match.group(1).lower() == "yes"
    return None
