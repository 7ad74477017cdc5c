"""Stage 1's verdict on a candidate instruction in one call: the heuristics first (cheap),
then the exact ROUGE-L novelty rule against the seeds and every kept instruction."""

from __future__ import annotations

from dataclasses import dataclass

from selfinstruct.config_sections import FilterConfig
from selfinstruct.filters.base import Drop, Remembers
from selfinstruct.filters.heuristics import build_instruction_filters, first_drop
from selfinstruct.filters.rouge import RougeNovelty

__all__ = ["Decision", "InstructionJudge"]


@dataclass(frozen=True)
class Decision:
    """A candidate's verdict. ``drop`` is ``None`` to keep it. ``score`` and ``nearest`` are
    its max ROUGE-L F against the kept texts and the first kept text reaching it, exact
    (``exact``) when the max is above the reporting floor; below it, the best F found (a
    lower bound, ``nearest`` may be ``None``). A heuristic drop is not scored: 0.0, ``None``,
    not exact."""

    drop: Drop | None
    score: float
    nearest: str | None
    exact: bool


class InstructionJudge:
    """The stage-1 rules over one growing pool of kept instructions (seeds included)."""

    def __init__(self, config: FilterConfig, floor: float | None = None) -> None:
        """``floor``: the reporting floor (default: ``config.rouge_nearest_floor``)."""
        self.rules = build_instruction_filters(config)
        floor = config.rouge_nearest_floor if floor is None else floor
        self.novelty = RougeNovelty(threshold=config.rouge_threshold, floor=floor)
        self._remembering = [rule for rule in self.rules if isinstance(rule, Remembers)]

    def decide(self, text: str) -> Decision:
        """The first heuristic that drops ``text``, else the ROUGE-L rule's verdict. Looks
        only: call :meth:`keep` for a text that is kept."""
        drop = first_drop(self.rules, text)
        if drop is not None:
            return Decision(drop, 0.0, None, False)
        drop, found = self.novelty.judge(text)
        nearest = self.novelty.index.text(found.index) if found.index >= 0 else None
        return Decision(drop, found.score, nearest, found.exact)

    def keep(self, text: str) -> None:
        """Remember a kept text (a seed or a kept instruction) in every stateful rule."""
        self.novelty.add(text)
        for rule in self._remembering:
            rule.add(text)

    def __len__(self) -> int:
        """How many texts were kept (seeds included)."""
        return len(self.novelty.index)
