"""Text utilities shared by the stages' reply parsers: pure functions, no I/O, no prompts.

Two kinds of teacher write replies: small completion models that continue a few-shot prompt
(the reply starts mid-item, right after ``Task 9:``, ``Input:``, ``Class label:`` or
``Output:``) and then wander off, and chat models that wrap the answer in a preamble,
markdown and closing chatter. Each stage's parser (in the stage's own file) accepts both,
normalises line endings, and never raises on arbitrary text; what they share is here.
"""

from __future__ import annotations

import re

B = r"(?:\*\*|__)?"  # optional markdown bold around a marker or label

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

#: What a teacher writes for "this task takes no input", normalised by :func:`marker_key`.
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

FENCE_RE = re.compile(r"^\s*(?:```|~~~)")


def split_lines(text: str) -> list[str]:
    """Split on any line ending (CRLF, CR, LF, U+2028 ...), without the endings."""
    return text.splitlines()


def strip_emphasis(text: str) -> str:
    """Remove markdown bold/italic (``**x**``, ``*x*``); keep ``__init__`` and ``2*3*4``."""
    if "*" not in text:  # nothing to remove (most replies): skip the regular expressions
        return text.strip()
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])", r"\1", text)
    if text.startswith("**") and text.count("**") == 1:  # a bold left unbalanced by a cut
        text = text[2:]
    if text.endswith("**") and text.count("**") == 1:
        text = text[:-2]
    return text.strip()


def strip_quotes(text: str) -> str:
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


def clean_text(text: str) -> str:
    """Strip whitespace, emphasis and surrounding quotes until nothing changes."""
    for _ in range(4):
        cleaned = strip_quotes(strip_emphasis(text.strip()))
        if cleaned == text:
            break
        text = cleaned
    return text


def marker_key(text: str) -> str:
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
    return marker_key(stripped) in _NO_INPUT_KEYS


def is_preamble(text: str) -> bool:
    """A chat model's introduction ("Sure! Here are 10 new tasks:") rather than content."""
    text = strip_emphasis(text.strip())
    if _PREAMBLE_RE.match(text):
        return True
    return text.endswith(":") and bool(_INTRO_RE.search(text))


def is_chatter(text: str) -> bool:
    """Closing remarks such as "I hope these help!" or "Let me know if you need more."."""
    return bool(_CHATTER_RE.match(strip_emphasis(text.strip())))


def is_meta(text: str) -> bool:
    """Commentary about the task or the examples ("This is an example of a ... task")."""
    return bool(_META_RE.search(text))



# ------------------------------------------------------------- blocks of lines

def opens_fence(line: str) -> bool:
    """Whether a content line leaves a code fence open (an odd number of ``` marks)."""
    return line.count("```") % 2 == 1 or bool(re.match(r"^\s*~~~", line))


def join_block(lines: list[str]) -> str:
    """Block lines as one text: inner newlines kept, trailing spaces and outer blank lines gone."""
    return "\n".join(line.rstrip() for line in lines).strip()


def split_paragraphs(content: str) -> list[str]:
    return re.split(r"\n[ \t]*\n", content)


def drop_trailing_chatter(content: str) -> str:
    """Cut at the first paragraph after the first that is chatter or commentary.

    ``"I love it.\n\nI hope these examples help!"`` → ``"I love it."``; so is
    ``"... \n\nThis is an example of a classification task ..."``.
    """
    paragraphs = split_paragraphs(content)
    for position in range(1, len(paragraphs)):
        if is_chatter(paragraphs[position]) or is_meta(paragraphs[position]):
            paragraphs = paragraphs[:position]
            break
    return "\n\n".join(paragraphs).strip()


def drop_leading_preamble(content: str) -> str:
    """Remove a first paragraph or line such as "Sure! Here is an input for the task:"."""
    paragraphs = split_paragraphs(content)
    if len(paragraphs) > 1 and is_preamble(paragraphs[0]):
        return "\n\n".join(paragraphs[1:]).strip()
    first, _, rest = content.partition("\n")
    if rest.strip() and first.rstrip().endswith(":") and is_preamble(first):
        return rest.strip()
    return content


def input_value(content: str) -> str:
    """An input block's text, ``""`` when it is a "no input" marker.

    A one-line input wholly inside one pair of quotes loses them: small models quote inputs.
    """
    if is_no_input(content):
        return ""
    return content if "\n" in content else strip_quotes(content)
