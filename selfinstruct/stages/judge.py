"""The LLM judge (``stages.judge``, off by default): rates each output 1-10 on a rubric.

It runs after stage 3 and after the instance filters (it rates only what they kept), one
request per output: with ``stages.outputs.samples`` > 1, one per sampled candidate. The
rubric is the prompt file (``prompts/judge.chat.txt``, ``judge.completions.txt``, or the
file ``stages.judge.prompt`` names). A reply is read by :func:`parse_judgement`: a score 1-10
(``Score: 7``, ``7/10``, ``Rating: 7``, or a bare number) and the rest as the rationale.

For each draft the candidates are ranked by score (ties keep their sample order); the best
becomes the output and every candidate keeps its rating (``Draft.ranked``). A best score
below ``min_score`` drops the draft: rejection ``judge_low_score`` with the score, the
rationale and the model. A draft none of whose replies can be read is dropped as
``unparseable`` (with the reply): judge replies are sampled at temperature 0 by default, so
asking again would mostly repeat the same reply, and the rejection is visible and counted.
"""

from __future__ import annotations

import re
from typing import ClassVar

from selfinstruct.records import Candidate, JudgeScore
from selfinstruct.stages.base import (
    Draft,
    Job,
    StageContext,
    Template,
    one_line,
    render_instance,
    request_seed,
)
from selfinstruct.stages.text import strip_emphasis
from selfinstruct.teachers.base import Completion, Request

LOW_SCORE = "judge_low_score"
_NUMBER = r"(10|[1-9])(?:\.(\d+))?"
_LABELLED_RE = re.compile(
    rf"\b(?:score|rating|grade|overall)\b[^\n\d]{{0,20}}?{_NUMBER}\b(?:\s*(?:/|out of)\s*10\b)?",
    re.IGNORECASE,
)
_OUT_OF_RE = re.compile(rf"(?<![\d.]){_NUMBER}\s*(?:/|out of)\s*10\b", re.IGNORECASE)
_BARE_RE = re.compile(rf"^\W*{_NUMBER}\W*$")
_RATIONALE_LABEL_RE = re.compile(r"^\s*(?:rationale|reason(?:ing)?|explanation)\s*[:：]\s*", re.I)


def parse_judgement(text: str) -> tuple[int, str] | None:
    """``(score, rationale)`` from a judge's reply, or None when it holds no score 1-10.

    The last labelled score wins (``Score: 7``, ``**Rating:** 8/10``), then the last
    ``N/10``, then a reply that is only a number. Decimals round half up (``7.5`` -> 8).
    """
    plain = strip_emphasis(text.replace("**", ""))
    match = None
    for pattern in (_LABELLED_RE, _OUT_OF_RE):
        found = list(pattern.finditer(plain))
        if found:
            match = found[-1]
            break
    if match is None:
        match = _BARE_RE.match(plain.strip())
        if match is None:
            return None
    whole, fraction = int(match.group(1)), match.group(2)
    score = whole + (1 if fraction and int(fraction[0]) >= 5 else 0)
    if not 1 <= score <= 10:
        return None
    rest = (plain[: match.start()] + plain[match.end() :]).strip()
    lines = [_RATIONALE_LABEL_RE.sub("", line).strip() for line in rest.splitlines()]
    rationale = one_line(" ".join(line for line in lines if line))
    rationale = re.sub(r"([.!?])[.,;:]+", r"\1", re.sub(r"\s+([.,;:!?])", r"\1", rationale))
    return score, rationale.strip(" :-")[:1000]


class JudgeStage:
    """Rates every answered draft's output(s); keeps the best, drops low scores."""

    name: ClassVar[str] = "judge"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "judge", frozenset({"instruction", "input", "output"})),
    )
    #: rate only the instances the instance filters kept (see JobRunner.run)
    after_instance_filters: ClassVar[bool] = True

    def __init__(self, context: StageContext) -> None:
        self.prompt = context.prompts["prompt"]
        self.min_score: int = getattr(context.settings, "min_score", 1)

    @staticmethod
    def _pairs(job: Job) -> list[tuple[Draft, str]]:
        """(draft, output to rate) for every answered draft, candidates in sample order."""
        return [
            (draft, output)
            for draft in job.drafts
            if draft.output is not None
            for output in (draft.candidates or [draft.output])
        ]

    def requests(self, job: Job) -> list[Request]:
        pairs = self._pairs(job)
        if pairs:
            job.prompts[self.name] = self.prompt.sha
        instruction = one_line(job.instruction.instruction)
        return [
            self.prompt.request(
                seed=request_seed(job.rng), instruction=instruction, input=draft.input, output=out
            )
            for draft, out in pairs
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        pairs = self._pairs(job)
        rated: dict[int, list[tuple[str, JudgeScore | None, str]]] = {}
        for (draft, output), completion in zip(pairs, completions, strict=True):
            reading = None
            if completion.finish_reason != "content_filter":
                reading = parse_judgement(completion.text)
            score = None
            if reading is not None:
                model = completion.model or job.models.get(self.name, "")
                score = JudgeScore(score=reading[0], rationale=reading[1], model=model)
            rated.setdefault(id(draft), []).append((output, score, completion.text))
        taken: set[tuple[str, str]] = set()
        drafts = {id(draft): draft for draft, _ in pairs}  # each once, in order
        for key, draft in drafts.items():
            self._decide(job, draft, rated[key], taken)

    def _decide(
        self,
        job: Job,
        draft: Draft,
        rated: list[tuple[str, JudgeScore | None, str]],
        taken: set[tuple[str, str]],
    ) -> None:
        """Rank the draft's candidates, keep the best or drop the draft with the reason."""
        scored = [(output, score) for output, score, _ in rated if score is not None]
        if not scored:
            shown = render_instance(draft.input, draft.output or "")
            job.reject(self.name, "unparseable", shown, {"reply": rated[0][2][:1000]})
            job.drop(draft)
            return
        scored.sort(key=lambda pair: -pair[1].score)  # stable: ties keep sample order
        # an output equal to an earlier draft's kept one (same input) would be a duplicate
        best = next((p for p in scored if (draft.input, p[0]) not in taken), None)
        if best is None:
            shown = render_instance(draft.input, scored[0][0])
            job.reject(self.name, "duplicate_instance", shown)
            job.drop(draft)
            return
        output, score = best
        if score.score < self.min_score:
            details = {"score": score.score, "rationale": score.rationale, "model": score.model}
            job.reject(self.name, LOW_SCORE, render_instance(draft.input, output), details)
            job.drop(draft)
            return
        taken.add((draft.input, output))
        draft.output, draft.judge = output, score
        if draft.candidates:
            unrated = [Candidate(output=out) for out, s, _ in rated if s is None]
            ranked = [Candidate(output=out, judge=s) for out, s in scored]
            ranked.sort(key=lambda c: c.output != output)  # the kept output first
            draft.ranked = ranked + unrated
