"""Integer pruning bounds for the ROUGE-L index: which pairs of lengths and prefix positions
can still reach F > t.

The float F is within a few ulps (~1e-15) of the exact 2L/(m+n), so F > t implies
2L/(m+n) > t' = t - 1e-9; every bound here uses t' in exact integer arithmetic, so none can
drop a pair that passes. A candidate of m tokens and a kept text of n tokens need
L >= need(m+n), the least integer with 2L > t'(m+n). How the index uses these numbers is
told in :mod:`selfinstruct.filters.rouge_index`.

One index answers at two thresholds, the decision's t and a lower reporting floor f: kept
texts are posted with f's bounds (longer prefixes, looser partner lengths), a superset of
what t needs, and a lookup at t probes its own (shorter) prefix and applies t's bounds, so
it stays exact.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["Bounds"]

# Pruning uses t - _MARGIN; float F differs from 2L/(m+n) by ~1e-15 at most, far below it.
_MARGIN = Fraction(1, 10**9)


class Bounds:
    """Integer pruning bounds for one threshold t, with t' = t - 1e-9 as an exact fraction.

    ``need(s)`` is the least L with 2L > t' * s (and L >= 1): two texts of s tokens together
    with float F > t have an LCS of at least need(s).
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        bound = Fraction(threshold) - _MARGIN
        self._num = bound.numerator
        self._den2 = 2 * bound.denominator
        self._need: list[int] = []
        self._prefix: list[int] = []
        self._max_total: list[int] = []
        self._shortest: list[int] = []
        self.table = np.zeros(0, dtype=np.int64)  # need(s) for s < len(table), vectorized

    def need(self, total: int) -> int:
        table = self._need
        while len(table) <= total:
            s = len(table)
            table.append(1 if self._num <= 0 else self._num * s // self._den2 + 1)
        return table[total]

    def need_table(self, max_total: int) -> np.ndarray:
        """``need`` as an array covering 0..max_total (grown on demand)."""
        if len(self.table) <= max_total:
            size = max(max_total + 1, 2 * len(self.table))
            self.need(size - 1)
            self.table = np.array(self._need[:size], dtype=np.int64)
        return self.table

    def max_total(self, lcs: int) -> int:
        """The largest total length s with need(s) <= lcs: two texts of s tokens or fewer
        together may pass with an LCS of ``lcs``. (need(s) <= v iff t' * s < 2v.)"""
        table = self._max_total
        while len(table) <= lcs:
            v = len(table)
            table.append(1 << 40 if self._num <= 0 else (v * self._den2 - 1) // self._num)
        return table[lcs]

    def admissible(self, m: int, n: int) -> bool:
        """Whether lengths m and n can give F > t at all (L <= min(m, n))."""
        return self.need(m + n) <= min(m, n)

    def prefix_len(self, m: int) -> int:
        """How many of a text's m elements (in order) its postings/probes use.

        The least demanding admissible partner length gives m - need(m + n0) + 1 (0 when
        no length is admissible, e.g. t = 1): need grows with n, so that is the shortest
        admissible partner n0.
        """
        table = self._prefix
        while len(table) <= m:
            table.append(self._compute_prefix_len(len(table)))
        return table[m]

    def core_len(self, n: int) -> int:
        """How many of a kept text's posted elements a partner at least as long can need:
        for m >= n, need(m + n) >= need(2n), so only positions < n - need(2n) + 1 count."""
        return min(self.prefix_len(n), max(0, n - self.need(2 * n) + 1))

    def short_len(self, m: int) -> int:
        """How many of a candidate's elements can meet a *longer* kept text (n > m, so
        need(m + n) >= need(2m + 1)): only those are probed against posting tails."""
        return min(self.prefix_len(m), max(0, m - self.need(2 * m + 1) + 1))

    def shortest_partner(self, m: int) -> int:
        """The least admissible partner length n0 for m (m + 1 when there is none): n -
        need(m + n) never decreases for n <= m, so bisection finds it."""
        table = self._shortest
        while len(table) <= m:
            table.append(self._compute_shortest(len(table)))
        return table[m]

    def _compute_shortest(self, m: int) -> int:
        if m == 0 or not self.admissible(m, m):
            return m + 1
        lo, hi = 1, m
        while lo < hi:
            mid = (lo + hi) // 2
            if self.need(m + mid) <= mid:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _compute_prefix_len(self, m: int) -> int:
        n0 = self.shortest_partner(m)
        return 0 if n0 > m else m - self.need(m + n0) + 1


