"""ROUGE-L F exactly as ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)``
computes it: its tokens, and its float expression for F (scalar and vectorized).

* tokens are ``re.findall(r"[a-z0-9]+", text.lower())``;
* if either side has no tokens, F = 0 (such a text never blocks anything);
* with L = LCS length, p = L/len(kept), r = L/len(candidate), F = 2*p*r/(p+r) in floating
  point. That is *not* always bit-equal to 2L/(m+n) (L=21, m=23, n=37 gives
  0.6999999999999998), so every decision is made with that very float expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from rapidfuzz.distance import LCSseq

__all__ = [
    "DEFAULT_REPORT_FLOOR",
    "DEFAULT_THRESHOLD",
    "Nearest",
    "check_cutoff",
    "fmeasure",
    "fmeasures",
    "rouge_l_f",
    "tokenize",
]

DEFAULT_THRESHOLD = 0.7
# Nearest neighbours are exact above this F. Lower floors cost more: on 29K real
# instructions (README, dedup section) 0.5 verifies ~27 texts a novel candidate, 0.3 ~650.
DEFAULT_REPORT_FLOOR = 0.5
_TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """rouge-score's default tokenizer without stemming: lowercase, runs of ``[a-z0-9]``."""
    return _TOKEN_RE.findall(text.lower())


def fmeasure(lcs: int, kept_len: int, candidate_len: int) -> float:
    """The reference float expression (``rouge_score.scoring.fmeasure`` of p and r)."""
    if kept_len == 0 or candidate_len == 0:
        return 0.0
    precision = lcs / kept_len
    recall = lcs / candidate_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def fmeasures(lcs: np.ndarray, kept_lengths: np.ndarray, candidate_len: int) -> np.ndarray:
    """:func:`fmeasure` over arrays: numpy float64 rounds each operation exactly as Python
    does, and the operations are the same, in the same order, so the results are equal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs / kept_lengths
        recall = lcs / candidate_len
        scores = 2 * precision * recall / (precision + recall)
    scores[lcs == 0] = 0.0
    return scores


def rouge_l_f(a_tokens: Sequence[str], b_tokens: Sequence[str]) -> float:
    """ROUGE-L F of two token lists, equal to rouge-score's ``fmeasure`` (it is symmetric)."""
    if not a_tokens or not b_tokens:
        return 0.0
    lcs = LCSseq.similarity(list(a_tokens), list(b_tokens))
    return fmeasure(lcs, len(b_tokens), len(a_tokens))


class Nearest(NamedTuple):
    """A text's nearest kept text: max F, the first index reaching it (-1 for none), and
    whether that is exact. Not exact: the true max is <= the floor, and ``score`` is the best
    F among the texts looked at (a lower bound; 0.0 and -1 when none was)."""

    score: float
    index: int
    exact: bool


def check_cutoff(value: float, name: str) -> float:
    """A ROUGE-L F cut-off in [0, 1] (TypeError / ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)
