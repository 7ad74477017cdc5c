"""Stage 3: the teacher answers one (instruction, input) per request.

Only drafts still without an output get a request (output-first drafts of classification
tasks already have theirs); a reply cut by ``max_tokens`` or a content filter is a rejection.

With ``stages.outputs.samples`` = k > 1 each draft gets k outputs (its ``candidates``, for
the judge to rank): one request with ``n=k``. A server that ignores ``n`` answers once; the
stage then asks the missing samples one request each in a second round, and from then on
sends k requests of one sample each straight away.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import ClassVar

from selfinstruct.records import SeedTask
from selfinstruct.stages.base import (
    Draft,
    Job,
    Sampling,
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
    #: a second round asks the samples that a server ignoring ``n`` left out
    request_rounds: ClassVar[int] = 2

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]
        self.samples: int = getattr(context.settings, "samples", 1)
        #: whether the server honoured ``n`` when last asked (None: not asked yet)
        self.n_honoured: bool | None = None
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
        """One request per draft without an output (``n`` = samples), or, in the second round,
        one request per sample that did not come back."""
        topups = [d for d in job.drafts if d.sampling is not None and d.sampling.missing]
        unanswered = [d for d in job.drafts if d.output is None and d.sampling is None]
        if not topups and not unanswered:
            return []
        job.prompts[self.name] = self.prompt.sha
        requests: list[Request] = []
        for draft in topups:
            sampling = draft.sampling
            assert sampling is not None
            sampling.awaiting, sampling.missing, sampling.topped_up = sampling.missing, 0, True
            requests += [self._request(job, draft, 1) for _ in range(sampling.awaiting)]
        if topups:
            return requests
        for draft in unanswered:
            if self.samples == 1 or self.n_honoured is not False:
                draft.sampling = Sampling(awaiting=1)
                requests.append(self._request(job, draft, self.samples))
            else:
                draft.sampling = Sampling(awaiting=self.samples)
                requests += [self._request(job, draft, 1) for _ in range(self.samples)]
        return requests

    def _request(self, job: Job, draft: Draft, n: int) -> Request:
        request = self.prompt.request(
            seed=request_seed(job.rng),
            demos=self.demos,
            instruction=one_line(job.instruction.instruction),
            input=draft.input,
        )
        return replace(request, n=n) if n > 1 else request

    def parse(self, job: Job, completions: list[Completion]) -> None:
        asked = [d for d in job.drafts if d.sampling is not None and d.sampling.awaiting]
        if not asked:
            return
        job.answered_by = self.name
        remaining = list(completions)
        for draft in asked:
            sampling = draft.sampling
            assert sampling is not None
            mine, remaining = remaining[: sampling.awaiting], remaining[sampling.awaiting :]
            if len(mine) == 1 and self.samples > 1 and not sampling.topped_up:
                self.n_honoured = len(mine[0].all_choices()) >= self.samples
            sampling.awaiting = 0
            self._read(job, draft, [choice for c in mine for choice in c.all_choices()])

    def _read(self, job: Job, draft: Draft, choices: list[tuple[str, str | None]]) -> None:
        """Keep the usable choices as the draft's candidates; drop the draft if none is left
        and no further round will ask again."""
        sampling = draft.sampling
        assert sampling is not None
        sampling.received += len(choices)
        for text, finish_reason in choices:
            text, problem = read_output(Completion(text, finish_reason))
            if problem is not None:
                details = {"sample": True} if self.samples > 1 else None
                job.reject(self.name, problem, render_instance(draft.input, text), details)
            elif self.samples == 1:
                draft.output = text
            elif text not in draft.candidates:
                draft.candidates.append(text)
        if draft.candidates:
            draft.output = draft.candidates[0]
        if self.samples > 1 and sampling.received < self.samples and not sampling.topped_up:
            sampling.missing = self.samples - sampling.received
        elif draft.output is None:
            job.drop(draft)


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
