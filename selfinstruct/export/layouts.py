"""Row layouts: one render function per layout, in :data:`LAYOUTS`.

* ``alpaca``: ``{"instruction", "input", "output"}`` (Stanford Alpaca; Axolotl ``alpaca``,
  LLaMA-Factory's default format);
* ``messages``: ``{"messages": [{"role": "system", ...}?, {"role": "user", ...},
  {"role": "assistant", ...}]}`` (TRL's SFTTrainer, the OpenAI fine-tuning API);
* ``sharegpt``: ``{"conversations": [{"from": "system", ...}?, {"from": "human", ...},
  {"from": "gpt", ...}]}`` (Axolotl and LLaMA-Factory ``sharegpt``);
* ``prompt-completion``: ``{"prompt", "completion"}`` (the Self-Instruct paper's GPT-3
  fine-tuning layout, see :func:`prompt_completion`; TRL reads it too);
* ``preference`` and ``ranked``: TRL's DPO rows and ranked candidates, from the judge's
  ratings of several sampled outputs (:mod:`.preference`; examples without two rated
  candidates are skipped and counted).

When the run has judge scores, the four one-row-per-example layouts carry a
``judge_score`` column (:func:`with_judge_score`; None for unrated rows such as seeds).

The user turn of ``messages``/``sharegpt`` is :func:`user_content`: the instruction, then a
blank line and the input when the input is not empty. Adding a layout is one function and
one entry in :data:`LAYOUTS`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from selfinstruct.export.options import ExportOptions
from selfinstruct.export.preference import preference_row, ranked_row
from selfinstruct.export.rows import Row

# The Self-Instruct fine-tuning templates (prepare_for_finetuning.py in the paper's
# repository): (prompt, completion) pairs, one chosen at random per example.
PAPER_TEMPLATES_WITH_INPUT = (
    ("{instruction}\nInput: {input}\nOutput:", " {output}"),
    ("{instruction}\n\nInput: {input}\n\nOutput:", " {output}"),
    ("Task: {instruction}\nInput: {input}\nOutput:", " {output}"),
    ("{instruction}\n\n{input}\n\nOutput:", " {output}"),
    ("{instruction}\n\n{input}\n\n", "{output}"),
    ("{instruction}\n{input}\n\n", "{output}"),
    ("Task: {instruction}\n\n{input}\n\n", "{output}"),
)
PAPER_TEMPLATES_NO_INPUT = (
    ("{instruction} Output:", " {output}"),
    ("{instruction}\nOutput:", " {output}"),
    ("{instruction}\n\nOutput:", " {output}"),
    ("{instruction}\n", "{output}"),
    ("{instruction}\n\n", "{output}"),
    ("Task: {instruction}\n\n", "{output}"),
)

Render = Callable[[Row, ExportOptions], dict[str, Any]]
CHAT_LAYOUTS = ("messages", "sharegpt")  # the layouts with a --system turn


def user_content(instruction: str, input: str) -> str:
    """The user turn: the instruction, then a blank line and the input if it is not empty."""
    if input.strip():
        return f"{instruction.strip()}\n\n{input.strip()}"
    return instruction.strip()


def prompt_completion(
    instruction: str, input: str, output: str, *, template: tuple[str, str] | None = None,
    eos: str = "",
) -> dict[str, str]:  # fmt: skip
    """The Self-Instruct fine-tuning layout.

    Without ``template`` (the paper's fixed layout): prompt = instruction, blank line, input,
    blank line (``"{instruction}\\n\\n{input}\\n\\n"``; without an input
    ``"{instruction}\\n\\n"``), completion = output. ``template`` is one of the paper's
    (prompt, completion) pairs. ``eos`` is appended to the completion (the paper used
    ``<|endoftext|>``; most trainers add the tokenizer's own end-of-sequence token).
    """
    instruction, input, output = instruction.strip(), input.strip(), output.strip()
    if template is None:
        prompt = f"{instruction}\n\n{input}\n\n" if input else f"{instruction}\n\n"
        return {"prompt": prompt, "completion": output + eos}
    prompt_template, completion_template = template
    return {
        "prompt": prompt_template.format(instruction=instruction, input=input),
        "completion": completion_template.format(output=output) + eos,
    }


def paper_template(row: Row, seed: int) -> tuple[str, str]:
    """The paper's template for this row: a seeded choice, stable for a given row id."""
    options = PAPER_TEMPLATES_WITH_INPUT if row.input.strip() else PAPER_TEMPLATES_NO_INPUT
    return random.Random(f"{seed}:{row.id}").choice(options)


def render_alpaca(row: Row, options: ExportOptions) -> dict[str, Any]:
    return {"instruction": row.instruction, "input": row.input, "output": row.output}


def render_messages(row: Row, options: ExportOptions) -> dict[str, Any]:
    turns = [
        {"role": "user", "content": user_content(row.instruction, row.input)},
        {"role": "assistant", "content": row.output},
    ]
    if options.system:
        turns.insert(0, {"role": "system", "content": options.system})
    return {"messages": turns}


def render_sharegpt(row: Row, options: ExportOptions) -> dict[str, Any]:
    turns = [
        {"from": "human", "value": user_content(row.instruction, row.input)},
        {"from": "gpt", "value": row.output},
    ]
    if options.system:
        turns.insert(0, {"from": "system", "value": options.system})
    return {"conversations": turns}


def render_prompt_completion(row: Row, options: ExportOptions) -> dict[str, Any]:
    template = paper_template(row, options.seed) if options.paper_templates else None
    return prompt_completion(
        row.instruction, row.input, row.output, template=template, eos=options.eos
    )


def render_preference(row: Row, options: ExportOptions) -> dict[str, Any]:
    return preference_row(row, user_content(row.instruction, row.input))


def render_ranked(row: Row, options: ExportOptions) -> dict[str, Any]:
    return ranked_row(row, user_content(row.instruction, row.input))


LAYOUTS: dict[str, Render] = {
    "alpaca": render_alpaca,
    "messages": render_messages,
    "sharegpt": render_sharegpt,
    "prompt-completion": render_prompt_completion,
    "preference": render_preference,
    "ranked": render_ranked,
}
#: the layouts with one row per example, which carry ``judge_score`` when the run has scores
EXAMPLE_LAYOUTS = ("alpaca", "messages", "sharegpt", "prompt-completion")


def with_judge_score(rendered: dict[str, Any], row: Row) -> dict[str, Any]:
    """``rendered`` plus the row's ``judge_score`` column."""
    return {**rendered, "judge_score": row.judge_score}
