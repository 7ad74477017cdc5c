"""Stage 3: the teacher answers one (instruction, input) per request.

Only drafts still without an output get a request (output-first drafts of classification
tasks already have theirs); a reply cut by ``max_tokens`` or a content filter is a rejection.
"""

from __future__ import annotations

import random
import re
from typing import ClassVar

from selfinstruct.records import SeedTask
from selfinstruct.stages.base import (
    Job,
    StageContext,
    Template,
    one_line,
    render_instance,
    request_seed,
)
from selfinstruct.stages.text import B, opens_fence, split_lines
from selfinstruct.teachers.base import Completion, Request


def pick_demos(rng: random.Random, seeds: list[SeedTask], count: int) -> list[SeedTask]:
    """Non-classification seeds whose first output is short enough to be a good example."""
    pool = [
        task
        for task in seeds
        if not task.is_classification and len(task.instances[0].output.split()) <= 120
    ] or seeds
    return rng.sample(pool, min(count, len(pool)))


class OutputStage:
    """Writes ``draft.output`` for every draft without one; unusable replies are rejected."""

    name: ClassVar[str] = "outputs"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "outputs", frozenset({"demos", "instruction", "input"})),
    )

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]
        demos = pick_demos(context.demo_rng, context.seeds, context.config.instance_demos)
        self.demos = [
            {
                "instruction": one_line(task.instruction),
                "input": task.instances[0].input.strip(),
                "output": task.instances[0].output.strip(),
            }
            for task in demos
        ]

    def requests(self, job: Job) -> list[Request]:
        unanswered = [draft for draft in job.drafts if draft.output is None]
        if not unanswered:
            return []
        job.prompts[self.name] = self.prompt.sha
        instruction = one_line(job.instruction.instruction)
        return [
            self.prompt.request(
                seed=request_seed(job.rng),
                demos=self.demos,
                instruction=instruction,
                input=draft.input,
            )
            for draft in unanswered
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        unanswered = [draft for draft in job.drafts if draft.output is None]
        if not unanswered:
            return
        job.answered_by = self.name
        for draft, completion in zip(unanswered, completions, strict=True):
            text, problem = read_output(completion)
            if problem is not None:
                job.drafts.remove(draft)
                job.reject(self.name, problem, render_instance(draft.input, text))
                continue
            draft.output = text


def read_output(completion: Completion) -> tuple[str, str | None]:
    """The cleaned output, and a rejection reason when the reply is unusable as a whole."""
    if completion.finish_reason == "length":
        return clean_output(completion.text), "output_truncated"
    if completion.finish_reason == "content_filter":
        return "", "content_filter"
    return clean_output(completion.text), None


# ------------------------------------------------------------ the reply's parser

_OUTPUT_LABEL_RE = re.compile(
    rf"^(?:#{{1,6}}\s*)?{B}(?:output|answer|response){B}\s*[:：]{B}[ \t]*", re.IGNORECASE
)
_NEW_EXAMPLE_RE = re.compile(
    rf"^\s*(?:{B}(?:task(?:\s*(?:#\s*)?\d{{1,4}})?|instruction|input){B}\s*[:：]"
    rf"|(?:#{{1,6}}\s*)?{B}example(?:\s*(?:#\s*)?\d+)?{B}\s*(?:[:：.]{B}\s*)?$"
    rf"|#{{3,}}\s*(?:$|{B}(?:task|instruction|input|output|response|example)\b))",
    re.IGNORECASE,
)
_SECOND_OUTPUT_RE = re.compile(rf"^\s*{B}output{B}\s*[:：]", re.IGNORECASE)


def clean_output(text: str) -> str:
    """A stage-3 reply reduced to the answer itself.

    Removes leading ``Output:``/``Answer:``/``Response:`` labels (small models double
    them) and cuts at the first line that starts a new example: ``Task:``,
    ``Instruction:``, ``Input:``, an ``Example``/``Example 2:`` header line, a ``###``
    separator or ``### Input``-style header, or a second ``Output:`` line. Content such
    as ``### Ingredients`` or ``Example: time is money`` stays, and so does everything
    inside code fences. Inner formatting (lists, code blocks, newlines) is kept.
    """
    text = "\n".join(split_lines(text)).strip()
    for _ in range(5):
        stripped = _OUTPUT_LABEL_RE.sub("", text, count=1).lstrip()
        if stripped == text:
            break
        text = stripped
    kept: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if in_fence:
            in_fence = not opens_fence(line)
        elif _NEW_EXAMPLE_RE.match(line) or (kept and _SECOND_OUTPUT_RE.match(line)):
            break
        else:
            in_fence = opens_fence(line)
        kept.append(line)
    return "\n".join(kept).strip()
