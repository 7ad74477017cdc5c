"""Parsers of teacher replies: pure functions from text to values (no I/O, no prompts).

Two kinds of teacher write these replies: small completion models that continue a
few-shot prompt (the reply starts mid-item, right after ``Task 9:``, ``Input:``,
``Class label:`` or ``Output:``) and then wander off, and chat models that wrap the
answer in a preamble, markdown and closing chatter. Every parser here accepts both,
normalises CRLF line endings, and never raises on arbitrary text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "clean_output",
    "is_no_input",
    "parse_inputs",
    "parse_label_input_pairs",
    "parse_task_list",
    "parse_yes_no",
]

# ----------------------------------------------------------------- shared pieces

_B = r"(?:\*\*|__)?"  # optional markdown bold around a marker or label
_SEP = r"[:：.)\-–—]"  # what separates "Task 10" from its text

_QUOTE_PAIRS = {
    '"': '"',
    "'": "'",
    "`": "`",
    "“": "”",
    "‘": "’",
    "«": "»",
    "„": "“",
    "「": "」",
    "『": "』",
}

#: What a teacher writes for "this task takes no input", normalised by :func:`_marker_key`.
_NO_INPUT_KEYS = frozenset(
    {
        "none",
        "na",
        "noinput",
        "noinputs",
        "noinputneeded",
        "noinputrequired",
        "noinputnecessary",
        "noinputisneeded",
        "noinputisrequired",
        "nil",
        "null",
        "empty",
        "notapplicable",
        "nothing",
    }
)

# A chat model's preamble: "Sure! Here are 10 new tasks:", "Below are some ideas", ...
_PREAMBLE_RE = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|ok|absolutely|great|alright|no problem|gladly)"
    r"(?:[!,.:]|\s+(?:here|i|let|these|below|the following)\b)"
    r"|here(?:'s|’s| is| are|'re| you go)\b|below (?:is|are)\b|as requested\b|these are\b"
    r"|the following (?:is|are) (?:\w+\s+){0,3}(?:tasks?|instructions?|prompts?|ideas|examples)\b"
    r"|i(?:'ve|’ve| have)? (?:created|generated|come up|came up|written|wrote|made|compiled)\b"
    r"|i(?:'ll|’ll| will) (?:now )?(?:give|provide|list|generate|create|write)\b)",
    re.IGNORECASE,
)
# An introduction line ending with ":" that announces tasks: "List of 20 new tasks:".
_INTRO_RE = re.compile(
    r"\b(?:new|more|additional|diverse|different|other|several|some|few|\d+"
    r"|one|two|three|four|five|six|seven|eight|nine|ten|twenty"
    r"|series of|list of|set of)\s+(?:\w+\s+){0,2}"
    r"(?:tasks?|instructions?|prompts?|ideas|examples?|inputs?|questions)\b",
    re.IGNORECASE,
)
# Closing chatter: "I hope these help!", "Let me know if ...".
_CHATTER_RE = re.compile(
    r"^(?:i hope|hope (?:this|these|that)|let me know|feel free|these (?:tasks|instructions)\b"
    r"|this (?:list|set)\b|good luck|enjoy\b|happy \w+ing|thanks?\b|thank you"
    r"|if you (?:need|want|have|would)|i (?:can|could) (?:also|generate|create|provide|write)"
    r"|would you like|do you want|please let|each (?:task|of these)|all (?:of )?these)",
    re.IGNORECASE,
)

# A small model talking about the examples instead of writing them.
_META_RE = re.compile(
    r"\b(?:classification task|class labels?|this is an example|examples? of a task"
    r"|(?:the|this) task (?:is|asks|requires|uses)|in this (?:example|task))\b",
    re.IGNORECASE,
)

_FENCE_RE = re.compile(r"^\s*(?:```|~~~)")


def _lines(text: str) -> list[str]:
    """Split on any line ending (CRLF, CR, LF, U+2028 ...), without the endings."""
    return text.splitlines()


def _strip_emphasis(text: str) -> str:
    """Remove markdown bold/italic (``**x**``, ``*x*``); keep ``__init__`` and ``2*3*4``."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])", r"\1", text)
    if text.startswith("**") and text.count("**") == 1:  # a bold left unbalanced by a cut
        text = text[2:]
    if text.endswith("**") and text.count("**") == 1:
        text = text[:-2]
    return text.strip()


def _strip_quotes(text: str) -> str:
    """Remove one pair of quotes around the whole text (``"Write a poem."`` → ``Write a poem.``)."""
    text = text.strip()
    if len(text) < 2 or text[0] not in _QUOTE_PAIRS:
        return text
    close = _QUOTE_PAIRS[text[0]]
    body, tail = text[1:], ""
    if len(body) >= 2 and body[-1] in ".,;" and body[-2] == close:  # "Write a poem".
        body, tail = body[:-1], body[-1]
    if not body.endswith(close):
        return text
    inner = body[:-1]
    if not inner.strip() or text[0] in inner or close in inner:
        return text  # '"Hi" and "Bye"' is not one quoted item
    inner = inner.strip()
    if tail == "." and inner[-1:] not in ".!?":
        inner += "."
    return inner


def _clean_text(text: str) -> str:
    """Strip whitespace, emphasis and surrounding quotes until nothing changes."""
    for _ in range(4):
        cleaned = _strip_quotes(_strip_emphasis(text.strip()))
        if cleaned == text:
            break
        text = cleaned
    return text


def _marker_key(text: str) -> str:
    """``"<No input>."`` → ``"noinput"``: the form compared against :data:`_NO_INPUT_KEYS`."""
    key = text.strip().lower()
    key = key.strip(" \t\"'`*()[]<>{}.,;:!")
    return re.sub(r"[\s_\-/]+", "", key)


def is_no_input(text: str) -> bool:
    """True for the ways a teacher says "no input": ``None``, ``N/A``, ``<noinput>``, ``-`` ..."""
    stripped = text.strip()
    if not stripped:
        return True
    if re.fullmatch(r"[\-–—]+\.?", stripped):
        return True
    return _marker_key(stripped) in _NO_INPUT_KEYS


def _is_preamble(text: str) -> bool:
    """A chat model's introduction ("Sure! Here are 10 new tasks:") rather than content."""
    text = _strip_emphasis(text.strip())
    if _PREAMBLE_RE.match(text):
        return True
    return text.endswith(":") and bool(_INTRO_RE.search(text))


def _is_chatter(text: str) -> bool:
    """Closing remarks such as "I hope these help!" or "Let me know if you need more."."""
    return bool(_CHATTER_RE.match(_strip_emphasis(text.strip())))


def _is_meta(text: str) -> bool:
    """Commentary about the task or the examples ("This is an example of a ... task")."""
    return bool(_META_RE.search(text))


# ------------------------------------------------------------------ stage 1: tasks

_HEADER_RE = re.compile(r"^#{1,6}(?:\s+|$)")
_TASK_RE = re.compile(
    rf"^{_B}(?:task|instruction)\s*(?:#\s*)?(\d{{1,4}}){_B}\s*(?:{_SEP}+|$){_B}\s*(.*)$",
    re.IGNORECASE,
)
_NUM_RE = re.compile(rf"^{_B}\(?#?(\d{{1,3}})\s*[.):](?!\d){_B}(?:\s+|$|(?=[^\W\d_]))(.*)$")
_LETTER_RE = re.compile(rf"^{_B}\(?([a-zA-Z]|[ivx]{{2,4}}|[IVX]{{2,4}})[.)]{_B}\s+(.*)$")
_BULLET_RE = re.compile(r"^([-*+•●○◦▪▫■□‣⁃∙·➢➤►▶→✓✔✅–—])\s+(.*)$")
_LABEL_RE = re.compile(
    rf"^{_B}(?:new\s+)?(?:instruction|task|prompt){_B}\s*[:：]{_B}\s*(.*)$", re.IGNORECASE
)
# Section labels inside an item whose content is not instruction text (dropped with their block).
_SECTION_RE = re.compile(
    rf"^{_B}(?:(?:example|sample)\s+)?(?:inputs?|outputs?|answers?|solutions?|responses?"
    rf"|class\s+labels?|labels?|notes?|explanation|expected\s+output|options?|choices"
    rf"|constraints?|context|hints?|category|type|difficulty|format|output\s+format"
    rf"|reasoning|rationale|test\s+cases?|examples?(?:\s*\d+)?){_B}\s*[:：]",
    re.IGNORECASE,
)
_BARE_EXAMPLE_RE = re.compile(
    rf"^{_B}(?:examples?|sample)(?:\s*(?:#\s*)?\d+)?{_B}\s*$", re.IGNORECASE
)
_RULE_RE = re.compile(r"^(?:-{3,}|\*{3,}|_{3,}|={3,})$")
_BOLD_LINE_RE = re.compile(r"^\*\*[^*]+\*\*\s*[:：]?$")
_TITLE_RE = re.compile(r"^\*\*([^*]+?)(?:\*\*\s*[:：\-–—]|[:：]\*\*)\s*(\S.*)$")
_INLINE_TASK_RE = re.compile(r"(?<=[.!?\"”])\s+(?=(?:\*\*)?Task\s*(?:#\s*)?\d{1,4}\s*[:.])")
_INLINE_SECTION_RE = re.compile(
    rf"(?<=[.!?])\s+{_B}(?:input|output|example(?:\s*\d+)?){_B}\s*[:：]", re.IGNORECASE
)
_LEADING_LABEL_RE = re.compile(
    rf"^{_B}(?:(?:new\s+)?(?:instruction|task|prompt)(?:\s*(?:#\s*)?\d{{1,4}})?){_B}\s*[:：]{_B}\s*",
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
    if _FENCE_RE.match(line):
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
    return " ".join(_clean_text(text).split())


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
    lines = [_classify(raw) for raw in _lines(raw_lines)]
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
            elif _is_chatter(line.text) or _is_preamble(line.text):
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
        content = [item for item in items if not _is_chatter(item.text)]
        content = [item for item in content if not _is_preamble(item.text)]
        items = (
            [item for item in content if item.paragraph == content[0].paragraph] if content else []
        )
    result: list[str] = []
    for item in items:
        raw = item.text
        if item.group or (item.kind == "para" and (_is_chatter(raw) or _is_preamble(raw))):
            continue
        cleaned = _clean_item(raw)
        if cleaned and any(ch.isalnum() for ch in cleaned):
            result.append(cleaned)
    return result


# ----------------------------------------------------------- classification answer

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
    for raw in _lines(text):
        line = raw.strip()
        if not line:
            continue
        for _ in range(3):
            cleaned = _ANSWER_LABEL_RE.sub("", _strip_quotes(_strip_emphasis(line))).strip()
            cleaned = cleaned.lstrip("*_\"'`“‘([ ").strip()
            if cleaned == line:
                break
            line = cleaned
        match = _YES_NO_RE.match(line)
        if match is None:
            return None
        return match.group(1).lower() == "yes"
    return None


# -------------------------------------------------------- stage 2: input blocks

_INPUT_LABEL_RE = re.compile(
    rf"^\s*{_B}inputs?(?:\s*(?:#\s*)?\d+)?(?:\s*\([^)\n]*\))?{_B}\s*[:：]{_B}[ \t]?(.*)$",
    re.IGNORECASE,
)
_EXAMPLE_HEADER_RE = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{_B}example(?:\s*(?:#\s*)?\d+)?{_B}\s*(?:[:：.)\-–—]|$){_B}\s*(.*)$",
    re.IGNORECASE,
)
_CLASS_LABEL_RE = re.compile(
    rf"^\s*{_B}(?:class(?:\s+|_)?label|label){_B}\s*[:：]{_B}\s*(.*)$", re.IGNORECASE
)
# Lines that end an input: the answer, or the start of another task.
_OUTPUT_LINE_RE = re.compile(
    rf"^\s*{_B}(?:outputs?|answer|response|solution|expected\s+output){_B}\s*[:：]{_B}\s*(.*)$",
    re.IGNORECASE,
)
_TASK_LINE_RE = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{_B}(?:task|instruction)(?:\s*(?:#\s*)?\d{{1,4}})?{_B}\s*[:：]",
    re.IGNORECASE,
)
_SEPARATOR_RE = re.compile(r"^\s*#{3,}\s*$")
_INPUT_SYNONYMS = ("sentence", "text", "review", "email", "tweet", "passage", "paragraph")
_SYNONYM_LABEL_RE = re.compile(
    rf"^\s*{_B}(?:{'|'.join(_INPUT_SYNONYMS)})(?:\s*(?:#\s*)?\d+)?{_B}\s*[:：]{_B}[ \t]?(.*)$",
    re.IGNORECASE,
)
_INLINE_INPUT_RE = re.compile(rf"(?<!\s)\s+{_B}input{_B}\s*[:：]{_B}\s*", re.IGNORECASE)


def _opens_fence(line: str) -> bool:
    """Whether a content line leaves a code fence open (an odd number of ``` marks)."""
    return line.count("```") % 2 == 1 or bool(re.match(r"^\s*~~~", line))


def _join(lines: list[str]) -> str:
    """Block lines as one text: inner newlines kept, trailing spaces and outer blank lines gone."""
    return "\n".join(line.rstrip() for line in lines).strip()


@dataclass
class _Block:
    lines: list[str] = field(default_factory=list)
    labeled: bool = False  # opened by an "Input:" label
    header: bool = False  # opened by an "Example N" header
    lead: bool = False  # the text before any label: the continuation of the prompt
    answered: bool = False  # an "Output:" line followed it


def _paragraphs(content: str) -> list[str]:
    return re.split(r"\n[ \t]*\n", content)


def _drop_trailing_chatter(content: str) -> str:
    """Cut at the first paragraph after the first that is chatter or commentary.

    ``"I love it.\n\nI hope these examples help!"`` → ``"I love it."``; so is
    ``"... \n\nThis is an example of a classification task ..."``.
    """
    paragraphs = _paragraphs(content)
    for position in range(1, len(paragraphs)):
        if _is_chatter(paragraphs[position]) or _is_meta(paragraphs[position]):
            paragraphs = paragraphs[:position]
            break
    return "\n\n".join(paragraphs).strip()


def _drop_leading_preamble(content: str) -> str:
    """Remove a first paragraph or line such as "Sure! Here is an input for the task:"."""
    paragraphs = _paragraphs(content)
    if len(paragraphs) > 1 and _is_preamble(paragraphs[0]):
        return "\n\n".join(paragraphs[1:]).strip()
    first, _, rest = content.partition("\n")
    if rest.strip() and first.rstrip().endswith(":") and _is_preamble(first):
        return rest.strip()
    return content


def _input_value(content: str) -> str:
    """An input block's text, ``""`` when it is a "no input" marker.

    A one-line input wholly inside one pair of quotes loses them: small models quote inputs.
    """
    if is_no_input(content):
        return ""
    return content if "\n" in content else _strip_quotes(content)


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

    for raw in _lines(text):
        if in_fence:  # code inside an input: labels in it are content
            if current is not None and not skipping:
                current.lines.append(raw)
            in_fence = not _opens_fence(raw)
            continue
        if match := _INPUT_LABEL_RE.match(raw):
            if (
                current is not None
                and current.header
                and not current.labeled
                and not _join(current.lines)
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
        in_fence = _opens_fence(content)
    close()

    results: list[str] = []
    labeled = any(block.labeled or block.header for block in blocks)
    for block in blocks:
        content = _drop_trailing_chatter(_join(block.lines))
        if block.lead and not block.answered:
            content = _drop_leading_preamble(content)
            if _is_chatter(content) or (
                labeled and (_is_preamble(content) or content.endswith(":"))
            ):
                continue  # "The email below ... Here are three example inputs:"
        if not content and not block.answered:
            continue  # "Input:" cut by the stop sequence, or an empty "Example 3" header
        value = _input_value(content)
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
    label = _clean_text(first).rstrip(". ").strip()
    return _clean_text(label)


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
    lines = _lines(text)
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
            in_fence = not _opens_fence(raw)
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
            in_fence = _opens_fence(match.group(1))
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
            in_fence = _opens_fence(raw)
        elif not current.label.strip():
            set_label(current, raw)  # "Class label:" ⏎ "Positive"
        else:
            current.pre.append(raw)
    close()

    results: list[tuple[str, str]] = []
    for pair in pairs:
        label = _clean_label(pair.label)
        if not label or (pair.lead and (_is_preamble(label) or _is_chatter(label))):
            continue
        if pair.has_input:
            content = _join(pair.input_lines)
        elif not has_any_input:
            content = _join(pair.pre)  # "Class label: X" ⏎ the input without its label
        else:
            continue
        content = _drop_trailing_chatter(content)
        if not content and not pair.answered:
            continue
        item = (label, _input_value(content))
        if item not in results:
            results.append(item)
        if len(results) >= limit:
            break
    return results


# ------------------------------------------------------------- stage 3: outputs

_OUTPUT_LABEL_RE = re.compile(
    rf"^(?:#{{1,6}}\s*)?{_B}(?:output|answer|response){_B}\s*[:：]{_B}[ \t]*", re.IGNORECASE
)
_NEW_EXAMPLE_RE = re.compile(
    rf"^\s*(?:{_B}(?:task(?:\s*(?:#\s*)?\d{{1,4}})?|instruction|input){_B}\s*[:：]"
    rf"|(?:#{{1,6}}\s*)?{_B}example(?:\s*(?:#\s*)?\d+)?{_B}\s*(?:[:：.]{_B}\s*)?$"
    rf"|#{{3,}}\s*(?:$|{_B}(?:task|instruction|input|output|response|example)\b))",
    re.IGNORECASE,
)
_SECOND_OUTPUT_RE = re.compile(rf"^\s*{_B}output{_B}\s*[:：]", re.IGNORECASE)


def clean_output(text: str) -> str:
    """A stage-3 reply reduced to the answer itself.

    Removes leading ``Output:``/``Answer:``/``Response:`` labels (small models double
    them) and cuts at the first line that starts a new example: ``Task:``,
    ``Instruction:``, ``Input:``, an ``Example``/``Example 2:`` header line, a ``###``
    separator or ``### Input``-style header, or a second ``Output:`` line. Content such
    as ``### Ingredients`` or ``Example: time is money`` stays, and so does everything
    inside code fences. Inner formatting (lists, code blocks, newlines) is kept.
    """
    text = "\n".join(_lines(text)).strip()
    for _ in range(5):
        stripped = _OUTPUT_LABEL_RE.sub("", text, count=1).lstrip()
        if stripped == text:
            break
        text = stripped
    kept: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if in_fence:
            in_fence = not _opens_fence(line)
        elif _NEW_EXAMPLE_RE.match(line) or (kept and _SECOND_OUTPUT_RE.match(line)):
            break
        else:
            in_fence = _opens_fence(line)
        kept.append(line)
    return "\n".join(kept).strip()
