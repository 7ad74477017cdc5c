"""What the derivation stages (evolve, paraphrase, invert) hand back on a job.

They run inside a job, after its outputs, and only write candidates: the run judges them
afterwards (:mod:`selfinstruct.derive`), against the whole pool of kept instructions, where
every candidate of stage 1 is judged too. A candidate is plain data, so a job that ran on
another worker carries it back unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selfinstruct.records import Instance, Origin
from selfinstruct.stages.text import (
    clean_text,
    drop_leading_preamble,
    drop_trailing_chatter,
    split_lines,
    split_paragraphs,
)
from selfinstruct.teachers.base import Completion

#: a line where a completion model starts the next part of an example, not the instruction
_NEXT_EXAMPLE_RE = re.compile(r"^\s*(?:#|(?:task|input|output|answer|response)\s*[:：])", re.I)

#: the derivation stages, by name (each stage's name is also the origin of what it writes)
DERIVATION_STAGES: tuple[Origin, ...] = ("evolve", "paraphrase", "invert")


@dataclass(frozen=True)
class Derived:
    """A candidate instruction written from a job's instruction.

    ``origin`` is the stage that wrote it; ``round`` and ``operation`` say which Evol-Instruct
    round and rewriting made an evolved one; ``instance`` is an inverted task's one instance
    and ``source`` the job's instance it was turned around from.
    """

    origin: Origin
    instruction: str
    round: int = 0
    operation: str | None = None
    instance: Instance | None = None
    source: Instance | None = None


def read_instruction(completion: Completion) -> tuple[str, str | None]:
    """A reply that is one instruction, on one line (a chat model's "Sure! Here is..." and
    closing remarks dropped), and a rejection reason when the reply is unusable as a whole."""
    if completion.finish_reason == "length":
        return _one_line(completion.text), "output_truncated"
    if completion.finish_reason == "content_filter":
        return "", "content_filter"
    text = drop_trailing_chatter(drop_leading_preamble(completion.text.strip()))
    paragraphs = split_paragraphs(text)
    if len(paragraphs) > 1 and paragraphs[0].rstrip().endswith(":"):  # "Here it is:"
        text = "\n\n".join(paragraphs[1:])
    lines = split_lines(text)
    ends = [n for n, line in enumerate(lines) if n and _NEXT_EXAMPLE_RE.match(line)]
    text = "\n".join(lines[: ends[0]] if ends else lines)  # a completion model went on
    text = clean_text(_one_line(text))
    return text, None if text else "empty_reply"


def _one_line(text: str) -> str:
    return " ".join(text.split())
