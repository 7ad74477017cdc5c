"""The judge's numbers for the report: how its scores (1-10) fall, kept and dropped.

Scores of kept examples come from ``examples.jsonl`` (``judge.score``); scores of dropped
ones from the ``judge_low_score`` rejections (``details.score``). ``min_score`` is read from
the run's config in its manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from selfinstruct.records import Example, Manifest, Rejection

LOW_SCORE = "judge_low_score"


@dataclass
class JudgeNumbers:
    """Examples per judge score: ``kept`` and ``dropped`` (below ``min_score``)."""

    kept: Counter[int]
    dropped: Counter[int]
    min_score: int | None
    unparseable: int

    @property
    def rated(self) -> int:
        return sum(self.kept.values()) + sum(self.dropped.values())

    def summary(self) -> str:
        scores = sorted((self.kept + self.dropped).elements())
        if not scores:
            return "no scores"
        mean = sum(scores) / len(scores)
        median = scores[len(scores) // 2]
        return (
            f"{len(scores):,} rated: mean {mean:.1f}, median {median}; "
            f"{sum(self.dropped.values()):,} dropped below {self.min_score or '?'}, "
            f"{self.unparseable:,} unreadable replies"
        )


def judge_numbers(
    examples: Sequence[Example], rejections: Sequence[Rejection], manifest: Manifest | None
) -> JudgeNumbers | None:
    """The judge's score counts, or None when the run has no judge scores at all."""
    kept = Counter(example.judge.score for example in examples if example.judge is not None)
    dropped: Counter[int] = Counter()
    unparseable = 0
    for row in rejections:
        if row.stage != "judge":
            continue
        if row.reason == LOW_SCORE and isinstance(row.details.get("score"), int):
            dropped[row.details["score"]] += 1
        elif row.reason == "unparseable":
            unparseable += 1
    if not kept and not dropped and not unparseable:
        return None
    config = manifest.config.get("stages", {}).get("judge", {}) if manifest else {}
    min_score = config.get("min_score")
    if not isinstance(min_score, int):
        min_score = None
    return JudgeNumbers(kept, dropped, min_score, unparseable)
