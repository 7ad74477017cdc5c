"""The Self-Instruct ROUGE-L novelty rule: drop a candidate whose ROUGE-L F against any kept
text exceeds the threshold, deciding and scoring exactly as
``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)`` does.

The parts: :mod:`~selfinstruct.filters.rouge_score` (tokens, LCS, F),
:mod:`~selfinstruct.filters.rouge_bounds` (integer pruning bounds),
:mod:`~selfinstruct.filters.rouge_postings` (the index's data structures) and
:mod:`~selfinstruct.filters.rouge_index` (:class:`RougeIndex`). This module re-exports their
public names and holds the rule itself, :class:`RougeNovelty`.
"""

from __future__ import annotations

from selfinstruct.filters.base import Drop
from selfinstruct.filters.rouge_index import RougeIndex
from selfinstruct.filters.rouge_score import (
    DEFAULT_REPORT_FLOOR,
    DEFAULT_THRESHOLD,
    Nearest,
    fmeasure,
    rouge_l_f,
    tokenize,
)

__all__ = [
    "DEFAULT_REPORT_FLOOR",
    "DEFAULT_THRESHOLD",
    "Nearest",
    "RougeIndex",
    "RougeNovelty",
    "fmeasure",
    "rouge_l_f",
    "tokenize",
]


class RougeNovelty:
    """The ROUGE-L rule as a stateful :class:`~selfinstruct.filters.base.TextFilter`.

    ``judge`` and ``filter`` only look; ``add`` remembers a kept text (a seed or a kept
    candidate), which makes it a :class:`~selfinstruct.filters.base.Remembers`.
    """

    name = "rouge"
    reason = "rouge_similar"

    def __init__(
        self,
        index: RougeIndex | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        floor: float | None = None,
    ) -> None:
        self.index = index if index is not None else RougeIndex(threshold, floor)

    def judge(self, text: str) -> tuple[Drop | None, Nearest]:
        """The drop (max F > threshold) or ``None``, and the nearest kept text, exact when its
        F is above the index's floor (see :meth:`RougeIndex.nearest`)."""
        nearest = self.index.nearest(text)
        if nearest.index < 0 or nearest.score <= self.index.threshold:
            return None, nearest
        return self._drop(nearest.score, nearest.index), nearest

    def filter(self, text: str) -> Drop | None:
        """The drop or ``None``, without looking for a novel text's nearest neighbour."""
        found = self.index.find_similar(text)
        return None if found is None else self._drop(*found)

    def _drop(self, score: float, nearest: int) -> Drop:
        return Drop(self.reason, {"score": score, "most_similar": self.index.text(nearest)})

    def add(self, text: str) -> int:
        """Remember a kept text; returns its index."""
        return self.index.add(text)
