"""Stage 2: instances for a new instruction, classification-aware.

* classification tasks are generated output-first: the teacher writes a class label, then an
  input for that label; the label is the draft's output (stage 3 then has nothing to do);
* other tasks are generated input-first: the teacher writes inputs only, and stage 3 answers
  each. A task that needs no input gets an empty input.

Demonstrations are seed tasks of the same kind, drawn once per run. In structured mode the
reply is JSON (:mod:`selfinstruct.stages.inputs_structured`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import ClassVar

from selfinstruct.records import InputsReply, LabelledInputsReply, SeedTask
from selfinstruct.stages.base import (
    Draft,
    Job,
    StageContext,
    StagePrompt,
    Template,
    one_line,
    request_seed,
    task_demo,
)
from selfinstruct.stages.inputs_structured import read_drafts
from selfinstruct.stages.text import (
    B,
    clean_text,
    drop_leading_preamble,
    drop_trailing_chatter,
    input_value,
    is_chatter,
    is_preamble,
    join_block,
    opens_fence,
    split_lines,
)
from selfinstruct.teachers.base import Completion, Request

_PLACEHOLDERS = frozenset({"demos", "instruction", "num_instances"})


def pick_demos(
    rng: random.Random, seeds: list[SeedTask], count: int, classification: bool
) -> list[SeedTask]:
    """Seeds of the same kind (classification or not) as the instruction being expanded."""
    pool = [task for task in seeds if task.is_classification == classification] or seeds
    return rng.sample(pool, min(count, len(pool)))


class InputStage:
    """Fills ``job.drafts``: (label, input) pairs output-first, or inputs alone."""

    name: ClassVar[str] = "inputs"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "inputs.input_first", _PLACEHOLDERS),
        Template("output_first_prompt", "inputs.output_first", _PLACEHOLDERS),
        Template("structured_prompt", "inputs.input_first.structured", _PLACEHOLDERS, InputsReply),
        Template(
            "structured_output_first_prompt",
            "inputs.output_first.structured",
            _PLACEHOLDERS,
            LabelledInputsReply,
        ),
    )

    def __init__(self, context: StageContext) -> None:
        self.mode, self.prompts = context.mode, context.prompts
        self.limit = context.config.max_instances_per_instruction
        count, rng = context.config.instance_demos, context.demo_rng
        # drawn in this order since the first release: same seed, same demonstrations
        seeds = context.seeds
        self.output_first_demos = [task_demo(t) for t in pick_demos(rng, seeds, count, True)]
        self.input_first_demos = [task_demo(t) for t in pick_demos(rng, seeds, count, False)]

    def prompt(self, classification: bool) -> StagePrompt:
        """The template for the kind of task, in the stage's mode."""
        field = "output_first_prompt" if classification else "prompt"
        return self.prompts[f"structured_{field}" if self.mode.structured else field]

    def requests(self, job: Job) -> list[Request]:
        prompt = self.prompt(job.is_classification)
        demos = self.output_first_demos if job.is_classification else self.input_first_demos
        job.prompts[self.name] = prompt.sha
        return [
            prompt.request(
                seed=request_seed(job.rng),
                demos=demos,
                instruction=one_line(job.instruction.instruction),
                num_instances=self.limit,
            )
        ]

    def parse(self, job: Job, completions: list[Completion]) -> None:
        """Drafts in reply order; the last one is dropped when the reply was cut short."""
        (completion,) = completions
        structured, problem, reply = None, "", completion.text
        if self.mode.structured:  # complete JSON instances only: none was cut short
            structured, problem = read_drafts(reply, job.is_classification, limit=self.limit)
        if structured is not None:
            drafts = structured
        elif job.is_classification:
            pairs = parse_label_input_pairs(completion.text, limit=self.limit + 1)
            drafts = [Draft(input=text, output=label) for label, text in pairs]
        else:
            inputs = parse_inputs(completion.text, limit=self.limit + 1)
            drafts = [Draft(input=text) for text in inputs]
        if structured is None and completion.finish_reason == "length" and len(drafts) > 1:
            drafts = drafts[:-1]
        job.drafts = drafts[: self.limit]
        job.answered_by = self.name
        if not job.drafts:
            details = {"mode": "structured", "problem": problem} if self.mode.structured else {}
            job.reject(self.name, "unparseable", completion.text, details)


# ------------------------------------------------------------ the replies' parsers

_INPUT_LABEL_RE = re.compile(
    rf"^\s*{B}inputs?(?:\s*(?:#\s*)?\d+)?(?:\s*\([^)\n]*\))?{B}\s*[:：]{B}[ \t]?(.*)$",
    re.IGNORECASE,
)
_EXAMPLE_HEADER_RE = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{B}example(?:\s*(?:#\s*)?\d+)?{B}\s*(?:[:：.)\-–—]|$){B}\s*(.*)$",
    re.IGNORECASE,
)
_CLASS_LABEL_RE = re.compile(
    rf"^\s*{B}(?:class(?:\s+|_)?label|label){B}\s*[:：]{B}\s*(.*)$", re.IGNORECASE
)
# Lines that end an input: the answer, or the start of another task.
_OUTPUT_LINE_RE = re.compile(
    rf"^\s*{B}(?:outputs?|answer|response|solution|expected\s+output){B}\s*[:：]{B}\s*(.*)$",
    re.IGNORECASE,
)
_TASK_LINE_RE = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{B}(?:task|instruction)(?:\s*(?:#\s*)?\d{{1,4}})?{B}\s*[:：]",
    re.IGNORECASE,
)
_SEPARATOR_RE = re.compile(r"^\s*#{3,}\s*$")
_INPUT_SYNONYMS = ("sentence", "text", "review", "email", "tweet", "passage", "paragraph")
_SYNONYM_LABEL_RE = re.compile(
    rf"^\s*{B}(?:{'|'.join(_INPUT_SYNONYMS)})(?:\s*(?:#\s*)?\d+)?{B}\s*[:：]{B}[ \t]?(.*)$",
    re.IGNORECASE,
)
_INLINE_INPUT_RE = re.compile(rf"(?<!\s)\s+{B}input{B}\s*[:：]{B}\s*", re.IGNORECASE)


@dataclass
class _Block:
    lines: list[str] = field(default_factory=list)
    labeled: bool = False  # opened by an "Input:" label
    header: bool = False  # opened by an "Example N" header
    lead: bool = False  # the text before any label: the continuation of the prompt
    answered: bool = False  # an "Output:" line followed it



def parse_inputs(text: str, *, limit: int) -> list[str]:
    """Inputs from an input-first stage-2 reply, in order, without repeats, at most ``limit``.

    The reply continues a prompt that ended with ``Input:``, so the text before the first
    ``Input:`` label is the first input; then come blocks ``Input: <text>``, optionally
    after ``Example N`` headers. An input keeps its inner newlines (code, emails) and ends
    at the next ``Input:``/``Example N`` line, an ``Output:``/``Task:``/``Class label:``
    line, or a ``###`` separator; ``Output:`` parts are ignored, and a ``Task:`` line after
    an input ends the reply (what follows belongs to another task). Trailing chatter and
    commentary paragraphs and a chat preamble are dropped; a one-line input wholly in
    quotes loses them. "No input" markers (``None``, ``N/A``, ``<noinput>``, ``-`` ...)
    give ``""``, and so does an empty block followed by an ``Output:`` line. A reply with
    nothing parseable gives ``[]``.
    """
    if limit <= 0:
        return []
    blocks: list[_Block] = []
    current: _Block | None = None
    skipping = False  # after an Output:/Task: line, until the next Input:/Example header
    in_fence = False

    def close() -> None:
        nonlocal current
        if current is not None:
            blocks.append(current)
        current = None

    for raw in split_lines(text):
        if in_fence:  # code inside an input: labels in it are content
            if current is not None and not skipping:
                current.lines.append(raw)
            in_fence = not opens_fence(raw)
            continue
        if match := _INPUT_LABEL_RE.match(raw):
            if (
                current is not None
                and current.header
                and not current.labeled
                and not join_block(current.lines)
            ):
                current.labeled = True  # "Example 1" ⏎ "Input: ..."
            else:
                close()
                current = _Block(labeled=True)
            content = match.group(1)
            skipping = False
        elif match := _EXAMPLE_HEADER_RE.match(raw):
            close()
            current = _Block(header=True)
            content = match.group(1)
            if inner := _INPUT_LABEL_RE.match(content):  # "Example 1: Input: ..."
                current.labeled, content = True, inner.group(1)
            skipping = False
        elif _OUTPUT_LINE_RE.match(raw):
            if current is None and not blocks and not skipping:
                current = _Block(lead=True)  # the reply skipped the input: it needs none
            if current is not None:
                current.answered = True
            close()
            skipping = True
            continue
        elif _TASK_LINE_RE.match(raw):
            close()
            if blocks:  # the model went on to another task: its inputs are not ours
                break
            skipping = True  # a chat model echoing the task first
            continue
        elif _CLASS_LABEL_RE.match(raw) or _SEPARATOR_RE.match(raw):
            close()
            skipping = True
            continue
        elif skipping:
            continue
        else:
            if current is None:
                if blocks or not raw.strip():
                    continue
                current = _Block(lead=True)
            content = raw
        current.lines.append(content)
        in_fence = opens_fence(content)
    close()

    results: list[str] = []
    labeled = any(block.labeled or block.header for block in blocks)
    for block in blocks:
        content = drop_trailing_chatter(join_block(block.lines))
        if block.lead and not block.answered:
            content = drop_leading_preamble(content)
            if is_chatter(content) or (
                labeled and (is_preamble(content) or content.endswith(":"))
            ):
                continue  # "The email below ... Here are three example inputs:"
        if not content and not block.answered:
            continue  # "Input:" cut by the stop sequence, or an empty "Example 3" header
        value = input_value(content)
        if value not in results:
            results.append(value)
        if len(results) >= limit:
            break
    return results


# ------------------------------------------------ stage 2: class label, input pairs


@dataclass
class _Pair:
    label: str = ""
    pre: list[str] = field(default_factory=list)  # lines after the label, before "Input:"
    input_lines: list[str] = field(default_factory=list)
    has_input: bool = False
    answered: bool = False
    lead: bool = False


def _clean_label(text: str) -> str:
    """``'"Positive."'`` → ``Positive``."""
    first = text.strip().split("\n", 1)[0]
    label = clean_text(first).rstrip(". ").strip()
    return clean_text(label)


def parse_label_input_pairs(text: str, *, limit: int) -> list[tuple[str, str]]:
    """``(label, input)`` pairs from an output-first (classification) stage-2 reply.

    The reply continues a prompt that ended with ``Class label:``: a label, then
    ``Input: <text>``, then possibly more ``Class label: X`` / ``Input: Y`` blocks.
    ``Label:`` means ``Class label:``; ``Sentence:``, ``Text:``, ``Review:``, ``Email:``
    (and a few alike) mean ``Input:`` only when the reply has no ``Input:`` label at all;
    with neither, the lines under a label are its input. A second ``Input:`` under one
    label reuses that label; an ``Input:`` then ``Output: X`` block (the wrong order)
    takes ``X`` as its label; a ``Task:`` line after a pair ends the reply. Labels lose
    quotes, emphasis and trailing periods; a "no input" marker gives input ``""``; pairs
    with an empty label or no input at all are dropped, and so are repeats. At most
    ``limit`` pairs.
    """
    if limit <= 0:
        return []
    lines = split_lines(text)
    has_input_label = any(_INPUT_LABEL_RE.match(line) for line in lines)
    input_re = _INPUT_LABEL_RE if has_input_label else _SYNONYM_LABEL_RE
    has_any_input = has_input_label or any(_SYNONYM_LABEL_RE.match(line) for line in lines)

    pairs: list[_Pair] = []
    current: _Pair | None = None
    skipping = False
    in_fence = False

    def close() -> None:
        nonlocal current
        if current is not None:
            pairs.append(current)
        current = None

    def set_label(pair: _Pair, content: str) -> None:
        parts = _INLINE_INPUT_RE.split(content, maxsplit=1)
        pair.label = parts[0]
        if len(parts) == 2:  # "Class label: Positive Input: I love it"
            pair.has_input = True
            pair.input_lines.append(parts[1])

    for raw in lines:
        if in_fence:
            if current is not None and current.has_input and not skipping:
                current.input_lines.append(raw)
            in_fence = not opens_fence(raw)
            continue
        if match := _CLASS_LABEL_RE.match(raw):
            close()
            current = _Pair()
            set_label(current, match.group(1))
            skipping = False
        elif match := input_re.match(raw):
            if current is None or current.has_input:
                label = current.label if current is not None else ""
                close()
                current = _Pair(label=label)
            current.has_input = True
            current.input_lines.append(match.group(1))
            in_fence = opens_fence(match.group(1))
            skipping = False
        elif _EXAMPLE_HEADER_RE.match(raw):
            close()
            skipping = False
        elif match := _OUTPUT_LINE_RE.match(raw):
            if current is not None:
                current.answered = True
                if not current.label.strip():  # "Input: x" ⏎ "Output: Positive"
                    current.label = match.group(1)
            close()
            skipping = True
        elif _TASK_LINE_RE.match(raw):
            close()
            if pairs:  # the model went on to another task: its examples are not ours
                break
            skipping = True  # a chat model echoing the task first
        elif _SEPARATOR_RE.match(raw):
            close()
            skipping = True
        elif skipping:
            continue
        elif current is None:
            if pairs or not raw.strip():
                continue
            current = _Pair(lead=True)
            set_label(current, raw)
        elif current.has_input:
            current.input_lines.append(raw)
            in_fence = opens_fence(raw)
        elif not current.label.strip():
            set_label(current, raw)  # "Class label:" ⏎ "Positive"
        else:
            current.pre.append(raw)
    close()

    results: list[tuple[str, str]] = []
    for pair in pairs:
        label = _clean_label(pair.label)
        if not label or (pair.lead and (is_preamble(label) or is_chatter(label))):
            continue
        if pair.has_input:
            content = join_block(pair.input_lines)
        elif not has_any_input:
            content = join_block(pair.pre)  # "Class label: X" ⏎ the input without its label
        else:
            continue
        content = drop_trailing_chatter(content)
        if not content and not pair.answered:
            continue
        item = (label, input_value(content))
        if item not in results:
            results.append(item)
        if len(results) >= limit:
            break
    return results
