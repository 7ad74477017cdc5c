"""Stage 2's structured replies: :class:`~selfinstruct.records.InputsReply` (input-first
tasks) and :class:`~selfinstruct.records.LabelledInputsReply` (classification tasks) read into
drafts, cleaned as the free-text parsers clean theirs ("no input" markers give ``""``, labels
lose quotes, emphasis and a trailing period; repeats are dropped)."""

from __future__ import annotations

from selfinstruct.records import (
    InputItem,
    InputsReply,
    LabelledInput,
    LabelledInputsReply,
)
from selfinstruct.stages.base import Draft
from selfinstruct.stages.structured import complete_items, looks_like_json, read_reply, valid_items
from selfinstruct.stages.text import clean_text, input_value


def read_drafts(text: str, classification: bool, *, limit: int) -> tuple[list[Draft] | None, str]:
    """Drafts from a structured stage-2 reply and what failed (``""`` when it is valid JSON).

    A reply cut short keeps its complete instances. ``(None, ...)`` when the reply is not
    JSON at all (a server that ignored the schema): the caller parses it as free text.
    """
    if classification:
        labelled, problem = read_reply(LabelledInputsReply, text)
        if labelled is None and not looks_like_json(text):
            return None, problem
        salvaged = valid_items(LabelledInput, complete_items(text, "instances"))
        pairs = labelled.instances if labelled is not None else salvaged
        drafts = [Draft(input=input_value(p.input.strip()), output=_label(p.label)) for p in pairs]
        drafts = [draft for draft in drafts if draft.output]
    else:
        inputs, problem = read_reply(InputsReply, text)
        if inputs is None and not looks_like_json(text):
            return None, problem
        salvaged_inputs = valid_items(InputItem, complete_items(text, "instances"))
        items = inputs.instances if inputs is not None else salvaged_inputs
        drafts = [Draft(input=input_value(item.input.strip())) for item in items]
    unique: list[Draft] = []
    for draft in drafts:
        if draft not in unique:
            unique.append(draft)
    return unique[:limit], problem


def _label(text: str) -> str:
    """``'"Positive."'`` → ``Positive``."""
    first = text.strip().split("\n", 1)[0]
    return clean_text(clean_text(first).rstrip(". ").strip())
