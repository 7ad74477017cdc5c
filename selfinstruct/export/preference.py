"""Layouts from the judge's rankings of several sampled outputs (``stages.outputs.samples`` > 1
with ``stages.judge.enabled``): one row per example that has at least two rated, distinct
candidates; any other example is skipped with a :class:`SkipRow` reason that the export
counts and reports.

* ``preference``: TRL's DPO rows ``{"prompt", "chosen", "rejected"}`` (the standard,
  non-conversational format; ``prompt`` is the instruction, then a blank line and the input):
  ``chosen`` is the best-rated candidate (the example's output), ``rejected`` the lowest-rated
  one, always rated strictly lower and never the same text; ``score_chosen`` and
  ``score_rejected`` are the judge's scores;
* ``ranked``: ``{"prompt", "completions", "scores"}`` with every rated candidate, best first
  (reward-model training on rankings, as in InstructGPT).
"""

from __future__ import annotations

from typing import Any

from selfinstruct.export.rows import Row

FEWER_THAN_TWO = "fewer than 2 distinct rated candidates"
TIED = "all candidates rated the same"


class SkipRow(Exception):
    """An example that cannot become a row of this layout; the message says why."""


def rated_candidates(row: Row) -> list[tuple[str, int]]:
    """The row's distinct candidates that have a judge score, best first (ties: file order)."""
    seen: set[str] = set()
    rated = []
    for output, score in row.candidates:
        if score is not None and output.strip() and output not in seen:
            seen.add(output)
            rated.append((output, score))
    rated.sort(key=lambda pair: -pair[1])
    return rated


def preference_row(row: Row, prompt: str) -> dict[str, Any]:
    """The ``preference`` row of ``row`` (see the module docstring), or :class:`SkipRow`."""
    rated = rated_candidates(row)
    if len(rated) < 2:
        raise SkipRow(FEWER_THAN_TWO)
    (chosen, best), (rejected, worst) = rated[0], rated[-1]
    if worst >= best:
        raise SkipRow(TIED)
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "score_chosen": best,
        "score_rejected": worst,
    }


def ranked_row(row: Row, prompt: str) -> dict[str, Any]:
    """The ``ranked`` row of ``row`` (see the module docstring), or :class:`SkipRow`."""
    rated = rated_candidates(row)
    if len(rated) < 2:
        raise SkipRow(FEWER_THAN_TWO)
    return {
        "prompt": prompt,
        "completions": [output for output, _ in rated],
        "scores": [score for _, score in rated],
    }
