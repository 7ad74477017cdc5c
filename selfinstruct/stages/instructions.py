"""Stage 1: ask the teacher for new task instructions, shown k demonstrations.

Each request shows ``num_seed_demos`` seed instructions and ``num_machine_demos`` earlier
machine instructions (6 + 2 in the paper), sampled with the round's RNG, and asks for up to
``instructions_per_request`` new ones. The reply is parsed here into candidate instruction
texts; the pipeline runs them through the heuristic and ROUGE-L filters. In structured mode
the request carries :class:`~selfinstruct.records.TaskList`'s schema and the reply is JSON.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

from selfinstruct.records import TaskList
from selfinstruct.stages.base import (
    Round,
    StageContext,
    StagePrompt,
    Template,
    one_line,
    request_seed,
)
from selfinstruct.stages.structured import complete_items, looks_like_json, read_reply
from selfinstruct.stages.text import FENCE_RE, B, clean_text, is_chatter, is_preamble, split_lines
from selfinstruct.teachers.base import Completion, Request

_SEP = r"[:：.)\-–—]"  # what separates "Task 10" from its text
_PLACEHOLDERS = frozenset({"demos", "num_new"})
_ITEM_MARKER_RE = re.compile(r"^\s*(?:\d{1,3}[.):]|[-*•])\s+")  # "1. Write ..." in a JSON item


def sample_demos(
    rng: random.Random,
    seed_pool: list[str],
    machine_pool: Sequence[str],
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
    """Stage 1. Works on a :class:`Round`; its candidates go to the pipeline's filters."""

    name: ClassVar[str] = "instructions"
    templates: ClassVar[tuple[Template, ...]] = (
        Template("prompt", "instructions", _PLACEHOLDERS),
        Template("structured_prompt", "instructions.structured", _PLACEHOLDERS, TaskList),
    )

    def __init__(self, context: StageContext) -> None:
        self.text_prompt = context.prompts["prompt"]
        self.structured_prompt = context.prompts.get("structured_prompt")
        self.mode = context.mode
        config = context.config
        self.num_new = config.instructions_per_request
        self.num_seed, self.num_machine = config.num_seed_demos, config.num_machine_demos
        self.seed_pool = [task.instruction for task in context.seeds]
        self.samples = config.stages.instructions.samples

    @property
    def prompt(self) -> StagePrompt:
        """The template in use: the structured one once the mode says so."""
        if self.mode.structured and self.structured_prompt is not None:
            return self.structured_prompt
        return self.text_prompt

    def requests(self, job: Round) -> list[Request]:
        demos = sample_demos(
            job.rng, self.seed_pool, job.machine_pool, self.num_seed, self.num_machine
        )
        request = self.prompt.request(seed=request_seed(job.rng), demos=demos, num_new=self.num_new)
        return [replace(request, n=self.samples)]

    def parse(self, job: Round, completions: list[Completion]) -> None:
        """Candidate instructions from every choice of the reply, in order, each once; a
        choice's last one is dropped if that choice was cut by max_tokens."""
        (completion,) = completions
        problems: list[str] = []
        for text, finish_reason in completion.all_choices():
            truncated = finish_reason == "length"
            if self.mode.structured:
                items, problem = read_task_list(text, truncated=truncated)
                problems += [problem] if problem else []
            else:
                items = parse_task_list(text, truncated=truncated)
            fresh = [one_line(item) for item in items][: self.num_new]
            job.candidates += [item for item in fresh if item and item not in job.candidates]
        if not job.candidates:
            details: dict[str, object] = {"finish_reason": completion.finish_reason}
            if self.mode.structured:
                details |= {"mode": "structured", "problem": "; ".join(problems)}
            job.reject(self.name, "unparseable", completion.text[:1000], details)


def read_task_list(text: str, *, truncated: bool = False) -> tuple[list[str], str]:
    """Instructions from a structured stage-1 reply, and what failed (``""`` when it is valid
    JSON). A reply cut short keeps its complete items; one that is not JSON at all (the
    server ignored the schema) goes to :func:`parse_task_list`."""
    reply, problem = read_reply(TaskList, text)
    if reply is not None:
        items = reply.tasks
    elif looks_like_json(text):
        items = [item for item in complete_items(text, "tasks") if isinstance(item, str)]
    else:
        items = parse_task_list(text, truncated=truncated)
    return [_clean_item(_ITEM_MARKER_RE.sub("", item, count=1)) for item in items], problem


# ------------------------------------------------------------ the reply's parser
_HEADER_RE = re.compile(r"^#{1,6}(?:\s+|$)")
_TASK_RE = re.compile(
    rf"^{B}(?:task|instruction)\s*(?:#\s*)?(\d{{1,4}}){B}\s*(?:{_SEP}+|$){B}\s*(.*)$",
    re.IGNORECASE,
)
_NUM_RE = re.compile(rf"^{B}\(?#?(\d{{1,3}})\s*[.):](?!\d){B}(?:\s+|$|(?=[^\W\d_]))(.*)$")
_LETTER_RE = re.compile(rf"^{B}\(?([a-zA-Z]|[ivx]{{2,4}}|[IVX]{{2,4}})[.)]{B}\s+(.*)$")
_BULLET_RE = re.compile(r"^([-*+•●○◦▪▫■□‣⁃∙·➢➤►▶→✓✔✅–—])\s+(.*)$")
_LABEL_RE = re.compile(
    rf"^{B}(?:new\s+)?(?:instruction|task|prompt){B}\s*[:：]{B}\s*(.*)$", re.IGNORECASE
)
# Section labels inside an item whose content is not instruction text (dropped with their block).
_SECTION_RE = re.compile(
    rf"^{B}(?:(?:example|sample)\s+)?(?:inputs?|outputs?|answers?|solutions?|responses?"
    rf"|class\s+labels?|labels?|notes?|explanation|expected\s+output|options?|choices"
    rf"|constraints?|context|hints?|category|type|difficulty|format|output\s+format"
    rf"|reasoning|rationale|test\s+cases?|examples?(?:\s*\d+)?){B}\s*[:：]",
    re.IGNORECASE,
)
_BARE_EXAMPLE_RE = re.compile(
    rf"^{B}(?:examples?|sample)(?:\s*(?:#\s*)?\d+)?{B}\s*$", re.IGNORECASE
)
_RULE_RE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,}|={3,})$")
_BOLD_LINE_RE = re.compile(r"^\*\*[^*]+\*\*\s*[:：]?$")
_TITLE_RE = re.compile(r"^\*\*([^*]+?)(?:\*\*\s*[:：\-–—]|[:：]\*\*)\s*(\S.*)$")
_INLINE_TASK_RE = re.compile(r"(?<=[.!?\"”])\s+(?=(?:\*\*)?Task\s*(?:#\s*)?\d{1,4}\s*[:.])")
_INLINE_SECTION_RE = re.compile(
    rf"(?<=[.!?])\s+{B}(?:input|output|example(?:\s*\d+)?){B}\s*[:：]", re.IGNORECASE
)
_LEADING_LABEL_RE = re.compile(
    rf"^{B}(?:(?:new\s+)?(?:instruction|task|prompt)(?:\s*(?:#\s*)?\d{{1,4}})?){B}\s*[:：]{B}\s*",
    re.IGNORECASE,
)

_OUTLINE_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){1,5}\s*[:)]\s+|^\d{1,3}(?:\.\d{1,3}){2,5}\.?\s+")

_RANK = {"task": 3, "num": 3, "letter": 2, "bullet": 1}


@dataclass
class _Line:
    kind: str  # task num letter bullet label section header rule fence blank plain
    indent: int = 0
    text: str = ""
    number: int | None = None


@dataclass
class _Item:
    kind: str  # para (unmarked), label, or a marker kind from _RANK
    indent: int = 0
    number: int | None = None
    parts: list[str] = field(default_factory=list)
    title: bool = False  # text so far is a heading: the next line replaces it
    relabeled: bool = False  # an "Instruction:" line already replaced its text
    group: bool = False  # a heading whose sub-items are the tasks: not itself a task
    closed: bool = False  # a blank line or a block ended it: plain lines no longer join

    paragraph: int = 0  # blank-line separated paragraph it started in

    @property
    def text(self) -> str:
        return " ".join(part for part in self.parts if part)

    @property
    def tail(self) -> str:
        """The last line added (an empty ``parts[0]`` is always replaced, never appended to)."""
        return self.parts[-1].strip() if self.parts else ""


def _looks_like_title(text: str) -> bool:
    """``**Poem writing**`` or ``**Sentiment:**``: a heading whose real text follows."""
    if not _BOLD_LINE_RE.match(text):
        return False
    inner = text.strip().strip("*：: ")
    return inner[-1:] not in ".!?" and len(inner.split()) <= 8


def _classify(raw: str) -> _Line:
    """What one physical line of a stage-1 reply is."""
    indent = len(raw) - len(raw.lstrip())
    line = raw.strip()
    if not line:
        return _Line("blank")
    if FENCE_RE.match(line):
        return _Line("fence", indent)
    if _RULE_RE.match(line):
        return _Line("rule", indent)
    header = False
    if _HEADER_RE.match(line):
        header = True
        line = _HEADER_RE.sub("", line, count=1).strip().rstrip("#").strip()
        if not line:
            return _Line("header", indent)
    if match := _TASK_RE.match(line):
        return _Line("task", indent, match.group(2), int(match.group(1)))
    if _SECTION_RE.match(line) or _BARE_EXAMPLE_RE.match(line):
        return _Line("section", indent)
    if match := _LABEL_RE.match(line):
        return _Line("label", indent, match.group(1))
    if match := _NUM_RE.match(line):
        return _Line("num", indent, match.group(2), int(match.group(1)))
    if match := _LETTER_RE.match(line):
        return _Line("letter", indent, match.group(2))
    if not header and (match := _BULLET_RE.match(line)):
        return _Line("bullet", indent, match.group(2))
    if header or _looks_like_title(line):  # "## Writing" or "**Math tasks**" between items
        return _Line("header", indent, line)
    if line.startswith("|"):  # a markdown table row: block content, never an instruction
        return _Line("section", indent)
    return _Line("plain", indent, line)


def _starts_new_line_item(previous: str, line: _Line) -> bool:
    """In a list without markers, whether ``line`` is a new task rather than a wrapped line."""
    ended = bool(re.search(r"[.!?][\"”')\]]?$", previous.rstrip()))
    return ended and line.indent == 0 and (line.text[:1].isupper() or line.text[:1].isdigit())


def _clean_item(text: str) -> str:
    """One instruction's final form: labels, numbering echoes, titles, emphasis, quotes gone."""
    text = " ".join(text.split())
    if match := _INLINE_SECTION_RE.search(text):
        text = text[: match.start()]
    for _ in range(3):  # "Task 9: Instruction: ..." echoes
        stripped = _LEADING_LABEL_RE.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    if match := _TITLE_RE.match(text):
        text = match.group(2)
    text = _OUTLINE_RE.sub("", text, count=1)  # "1.1.2: Give three tips"
    return " ".join(clean_text(text).split())


def parse_task_list(text: str, *, truncated: bool = False) -> list[str]:
    """New task instructions from a stage-1 reply, in order, one line each.

    Accepts a completions-style continuation (the reply starts with the text of the task
    the prompt opened, then ``Task 10: ...`` or ``10. ...``) and chat-style lists (numbered,
    lettered, bulleted, ``Instruction:`` blocks, markdown headers), dropping a preamble,
    closing chatter and explanation paragraphs between items. Lines wrapped inside an item
    are joined with a space. ``Input:``/``Output:``/``Example`` blocks, code fences, tables,
    the lines after an item ending with ":" and nested sub-items are dropped: they are
    instances, options or details of the task, and stage 2 writes instances itself (joining
    them would glue "- Day 1: Colosseum" onto "Plan a trip to Rome."). The exception is a
    heading with sub-items ("1. **Writing**" then "- Write a poem"): there the sub-items
    are the tasks. A reply with no list markers at all yields its first paragraph, one task
    a line. With ``truncated`` (the reply hit ``max_tokens``) the last item, possibly cut
    short, is dropped.
    """
    raw_lines = _INLINE_TASK_RE.sub("\n", text.replace("\r\n", "\n"))
    lines = [_classify(raw) for raw in split_lines(raw_lines)]
    markers = [line for line in lines if line.kind in _RANK]
    marked = bool(markers) or any(line.kind == "label" for line in lines)
    top_indent = min((line.indent for line in markers), default=0)
    top_ranks = [_RANK[line.kind] for line in markers if line.indent <= top_indent + 1]
    dominant = max(top_ranks, default=0)

    items: list[_Item] = []
    current: _Item | None = None
    skipping = False  # inside a block whose lines are not instruction text
    in_fence = False
    last_number: int | None = None
    last_kind: str | None = None
    group: _Item | None = None  # the heading whose sub-items are being read as tasks
    inner: int | None = None  # the last number of a numbered list inside a block
    paragraph = 0

    def start(item: _Item) -> _Item:
        item.paragraph = paragraph
        items.append(item)
        return item

    for line in lines:
        if in_fence:
            in_fence = line.kind != "fence"
            continue
        kind = line.kind
        if kind == "fence":
            in_fence, skipping = True, True
            continue
        if kind in _RANK:
            top = _RANK[kind] == dominant and line.indent <= top_indent + 1
            if top and kind == "num" and last_number is not None and line.number is not None:
                if last_kind != "num":  # "Task 3:" then "1. apple": an option, not a task
                    top = line.number == last_number + 1
                elif skipping:  # "1. milk" ⏎ "2. eggs" inside an item's input block
                    inside = line.number <= last_number or (
                        inner is not None and line.number == inner + 1
                    )
                    top, inner = not inside, line.number if inside else None
            if top:
                current = start(_Item(kind, line.indent, line.number, [line.text]))
                current.title = _looks_like_title(line.text) or not line.text.strip()
                last_number, last_kind, skipping, group = line.number, kind, False, None
                inner = None
                continue
            parent = group if group is not None else current
            if (
                parent is not None
                and parent.kind != "para"
                and (parent.group or parent.title or not parent.tail)
            ):  # "1. **Writing**" then "   - Write a poem": the sub-items are the tasks
                parent.group, group, skipping = True, parent, False
                current = start(_Item("sub", line.indent, None, [line.text]))
                current.title = _looks_like_title(line.text)
            else:  # a nested sub-item of a real task: its details or options, dropped
                skipping = True
            continue
        if kind == "label":
            replace = (
                current is not None
                and current.kind not in ("para", "label")
                and not current.relabeled
                and (current.title or not current.tail)
            )
            if replace and current is not None:
                current.parts, current.title, current.relabeled = [line.text], False, True
                current.closed = False
            else:
                current = start(_Item("label", line.indent, None, [line.text], relabeled=True))
            skipping, group = False, None
            continue
        if kind in ("section", "header", "rule"):
            if current is not None:
                current.closed = True
            skipping = kind == "section" or (kind == "header" and marked)
            continue
        if kind == "blank":
            if current is not None and current.tail:
                current.closed = True
                paragraph += 1
            if not marked:
                skipping = False
            continue
        # a plain line
        if skipping:
            continue
        if current is not None and not current.closed:
            if current.title or not current.tail:
                current.parts, current.title = [line.text], False
            elif is_chatter(line.text) or is_preamble(line.text):
                current.closed, skipping = True, marked  # "I hope these help!"
            elif current.tail.endswith((":", "：")):
                current.closed, skipping = True, True  # "Classify:" ⏎ an input block
            elif not marked and _starts_new_line_item(current.tail, line):
                current = start(_Item("para", line.indent, None, [line.text]))
            else:
                current.parts.append(line.text)  # a wrapped line
            continue
        if current is not None and not current.tail:  # "### Task 1" ⏎⏎ "Write ..."
            current.parts, current.title, current.closed = [line.text], False, False
            continue
        if marked and current is not None:
            skipping = True  # an explanation or chatter paragraph between/after items
            continue
        current = start(_Item("para", line.indent, None, [line.text]))

    if truncated and items:
        items.pop()
    if not marked:  # no list markers: the first paragraph with content is the answer
        content = [item for item in items if not is_chatter(item.text)]
        content = [item for item in content if not is_preamble(item.text)]
        items = (
            [item for item in content if item.paragraph == content[0].paragraph] if content else []
        )
    result: list[str] = []
    for item in items:
        raw = item.text
        if item.group or (item.kind == "para" and (is_chatter(raw) or is_preamble(raw))):
            continue
        cleaned = _clean_item(raw)
        if cleaned and any(ch.isalnum() for ch in cleaned):
            result.append(cleaned)
    return result
