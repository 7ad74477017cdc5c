"""The kept texts, indexed so that "is any kept text within ROUGE-L F > t of this one?" and
"which kept text is nearest?" need no scan of every kept text, with rouge-score's exact
answers (:mod:`selfinstruct.filters.rouge_score`).

A candidate is similar iff max F over the kept texts > threshold.

Why the pruning is exact. The float F is within a few ulps (~1e-15) of the exact 2L/(m+n),
so F > t implies 2L/(m+n) > t' = t - 1e-9; every bound below uses t' in exact integer
arithmetic (:class:`~selfinstruct.filters.rouge_bounds.Bounds`), so none can drop a pair
that passes. A candidate of m tokens and a kept text of n tokens need L >= need(m+n), the
least integer with 2L > t'(m+n). Write each text as the *set* of its elements (token, k-th
occurrence): the token overlap |X ∩ Y| (a multiset intersection) bounds L. Then:

1. **length**: L <= min(m, n), so need(m+n) <= min(m, n);
2. **prefix** (set-similarity joins): sort every text's elements by one fixed total order.
   The smallest common element c has |X ∩ Y| - 1 common elements after it in both texts,
   so it sits at 0-based position <= m - need(m+n) in X and <= n - need(m+n) in Y. A kept
   text is posted under the elements of its prefix only (long enough for its shortest
   admissible partner), and a candidate probes its own prefix;
3. **position**: a hit at positions (pos_x, pos_y) counts only if m - pos_x and n - pos_y
   are both >= need(m+n): true at c for every pair that passes. The two halves become
   tests on stored numbers: n <= max_total(m - pos_x) - m, and m <= h, where h =
   max_total(n - pos_y) - n is stored with the entry. Postings are kept sorted by n so
   that long ones are cut to the right lengths by bisection. A kept text's positions that
   only a shorter partner can use ("tail") are posted apart, and only the candidate's
   first positions (those that can meet a longer text) probe them;
4. **buckets** (token id mod 64): the tokens of X in buckets Y occupies bound the overlap
   (a 64-bit mask stored in every posting entry), and so does sum over buckets of
   min(count_x, count_y) (a row of 64 counts per kept text);
5. survivors get the exact LCS (``rapidfuzz.distance.LCSseq`` on token ids, one code point
   per token) and the reference float expression decides.

The order puts rare elements first so prefixes and postings stay short. Frequencies are
those of the texts added so far, frozen between rebuilds (each time the index grows 4-fold) so
stored prefixes and probes always use the same order; an element first seen after a rebuild
sorts before all others, in id order, which keeps the order total and fixed. A candidate's
elements that no kept text has are placed first: they match nothing, and the position
argument in 2 only counts elements before c, so any placement of them is sound.

One index answers at the decision's threshold and at a lower floor: see
:mod:`selfinstruct.filters.rouge_bounds`.
"""

from __future__ import annotations

from array import array
from collections import Counter

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

from selfinstruct.filters import rouge_postings
from selfinstruct.filters.rouge_bounds import Bounds
from selfinstruct.filters.rouge_postings import (
    Hits,
    Posting,
    Query,
    SearchCounts,
    Seq,
    Sketches,
    Vocabulary,
    buckets,
    to_elements,
)
from selfinstruct.filters.rouge_score import (
    DEFAULT_THRESHOLD,
    Nearest,
    check_cutoff,
    fmeasure,
    fmeasures,
    tokenize,
)

__all__ = ["RougeIndex"]

# Rank of an element first seen after the last rebuild: below every ranked one, in id order.
_NEW = 1 << 62
_FIRST_REBUILD = 128
_REBUILD_GROWTH = 4  # the order is rebuilt each time the index grows 4-fold
# Posting entries pack a length n and a partner length h in 16 bits each, saturating at
# _CAP: n == _CAP stands for any n >= _CAP, and every test stays conservative.
_CAP = 0xFFFF
_BATCH = 32  # more candidates than this are verified in one rapidfuzz call
_CHUNK = 64  # nearest-neighbour candidates are verified this many at a time
_NONE = np.zeros(0, dtype=np.int64)



class RougeIndex:
    """The kept texts, answering "is this new text novel?" exactly as rouge-score would.

    ``add`` always adds; ``is_novel``, ``find_similar`` and ``nearest`` are pruned lookups
    (no scan of every kept text); ``most_similar`` and ``add_if_novel`` also give the exact
    maximum below the threshold, by an LCS against every kept text in C (~0.1 µs a text:
    fine for a few thousand seeds, not for a growing pool).

    ``floor`` (default and at most: the threshold) is the max F above which :meth:`nearest`
    is exact; texts are posted for the floor, which answers both (bounds at a lower
    threshold are looser, so every pair a higher one needs is still posted).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, floor: float | None = None) -> None:
        self.threshold = check_cutoff(threshold, "threshold")
        floor = self.threshold if floor is None else check_cutoff(floor, "floor")
        self.floor = min(floor, self.threshold)
        self._bounds = Bounds(self.threshold)  # decisions
        self._floor_bounds = Bounds(self.floor) if self.floor < self.threshold else self._bounds
        self.counts = SearchCounts()
        self._vocab = Vocabulary()
        self._texts: list[str] = []
        self._seqs: list[Seq] = []
        self._lengths = array("q")  # token count of each kept text
        self._masks = array("Q")  # buckets each kept text occupies (see _buckets)
        self._first: dict[Seq, int] = {}  # token sequence -> first index holding it
        self._sketches = Sketches()
        self._freq: Counter[int] = Counter()  # element -> number of kept texts holding it
        self._rank: dict[int, int] = {}  # element -> position in the frozen order
        # element -> the texts posted under it (see _post)
        self._core: dict[int, Posting] = {}
        self._tail: dict[int, Posting] = {}
        self._next_rebuild = _FIRST_REBUILD

    def __len__(self) -> int:
        return len(self._texts)

    def text(self, i: int) -> str:
        """The i-th added text, as given."""
        return self._texts[i]

    # -- adding ---------------------------------------------------------------------------

    def add(self, text: str) -> int:
        """Add a text unconditionally (a seed, or a kept candidate); return its index."""
        return self._add(text, tokenize(text))

    def _add(self, text: str, tokens: list[str]) -> int:
        ids = self._vocab.intern(tokens)
        if self._vocab.wide and self._seqs and isinstance(self._seqs[0], str):
            self._widen()
        seq = self._vocab.encode(ids)
        i = len(self._texts)
        self._texts.append(text)
        self._seqs.append(seq)
        self._lengths.append(len(ids))
        self._first.setdefault(seq, i)
        counts, levels = buckets(ids)
        self._sketches.append(counts)
        self._masks.append(levels[0] if levels else 0)
        elements = to_elements(ids)
        self._freq.update(elements)
        rank = self._rank
        rank.update([(e, e - _NEW) for e in elements if e not in rank])
        if len(self._texts) >= self._next_rebuild:
            self._rebuild()
        else:
            self._post(i, elements)
        return i

    def _post(self, i: int, elements: list[int]) -> None:
        """Post text i under each element of its prefix (at the floor's bounds, see
        :class:`~selfinstruct.filters.rouge_postings.Posting`), with the longest partner
        each position can serve, h = max_total(n - pos) - n; n and h saturate at _CAP,
        which keeps every test on them conservative.

        Positions below ``core_len`` go to the core postings, the rest of the prefix (only
        useful to shorter candidates) to the tail postings.
        """
        n = len(elements)
        bounds = self._floor_bounds
        size = bounds.prefix_len(n)
        if size == 0:
            return
        core = bounds.core_len(n)
        head = min(n, _CAP) << 48 | i << 16
        mask = self._masks[i]
        ordered = sorted(elements, key=self._rank.__getitem__)
        max_total = bounds.max_total
        for pos in range(size):
            postings = self._core if pos < core else self._tail
            posting = postings.get(ordered[pos])
            if posting is None:
                posting = postings[ordered[pos]] = Posting()
            posting.entries.append(head | min(max_total(n - pos) - n, _CAP))
            posting.masks.append(mask)

    def _rebuild(self) -> None:
        """Re-rank elements by frequency (rarest first) and re-post every prefix."""
        freq = self._freq
        order = sorted(freq, key=lambda e: (freq[e], e))
        self._rank = {e: r for r, e in enumerate(order)}
        self._core, self._tail = {}, {}
        decode = self._vocab.decode
        for i, seq in enumerate(self._seqs):
            self._post(i, to_elements(decode(seq)))
        self._next_rebuild = _REBUILD_GROWTH * len(self._texts)

    def _widen(self) -> None:
        """Switch stored sequences from strings to tuples (over a million distinct tokens)."""
        self._seqs = [tuple(map(ord, s)) if isinstance(s, str) else s for s in self._seqs]
        self._first = {}
        for i, seq in enumerate(self._seqs):
            self._first.setdefault(seq, i)

    # -- lookups --------------------------------------------------------------------------

    def find_similar(self, text: str) -> tuple[float, int] | None:
        """``(max F, first index reaching it)`` if max F > threshold, else ``None``. Exact.

        Every pair with F > threshold survives the pruning (module docstring), so the
        maximum over the survivors is the maximum over all kept texts.
        """
        return self._search(Query(self._vocab, text), self._bounds, first_only=False)

    def is_novel(self, text: str) -> bool:
        """True iff max ROUGE-L F against every kept text is <= threshold."""
        return self._search(Query(self._vocab, text), self._bounds, first_only=True) is None

    def nearest(self, text: str) -> Nearest:
        """Max F and the first kept text reaching it, exact whenever max F > ``floor`` (else a
        lower bound, see :class:`Nearest`). Never a full scan: one lookup at the floor, whose
        exact answer above the floor is also the decision (max F > threshold >= floor)."""
        query = Query(self._vocab, text)
        if self._floor_bounds is self._bounds:
            found = self._search(query, self._bounds, first_only=False)
            if found is not None:
                return Nearest(found[0], found[1], True)
            return Nearest(0.0, -1, query.length == 0 or not self._texts or self.floor == 0.0)
        score, index, exact = self._nearest_above(query, self._floor_bounds)
        return Nearest(score, index, exact or self.floor == 0.0)

    def most_similar(self, text: str) -> tuple[float, int]:
        """Exact ``(max F, index of the first kept text reaching it)``; ``(0.0, -1)`` when no
        kept text shares a token with ``text`` (max F is then 0)."""
        query = Query(self._vocab, text)
        found = self._search(query, self._bounds, first_only=False)
        return found if found is not None else self._scan(query)

    def add_if_novel(self, text: str) -> tuple[bool, float, int]:
        """Add ``text`` iff it is novel. Returns ``(added, max F, index of the nearest)``,
        exact either way, as :meth:`most_similar` gives them (before adding)."""
        query = Query(self._vocab, text)
        found = self._search(query, self._bounds, first_only=False)
        if found is not None:
            return False, found[0], found[1]
        score, nearest = self._scan(query)
        self._add(text, query.tokens)
        return True, score, nearest

    def find_or_add(self, text: str) -> tuple[float, int] | None:
        """The greedy dedup step: :meth:`find_similar`, and add ``text`` when it finds
        nothing (then returns ``None``). Skips the exact maximum of a novel text, which
        :meth:`add_if_novel` computes."""
        query = Query(self._vocab, text)
        found = self._search(query, self._bounds, first_only=False)
        if found is None:
            self._add(text, query.tokens)
        return found

    def _search(
        self, query: Query, bounds: Bounds, *, first_only: bool
    ) -> tuple[float, int] | None:
        """Max F over the candidates that pass every bound, if it exceeds the bounds'
        threshold (the index's threshold or its floor; texts are posted for the lower)."""
        if query.length == 0 or not self._texts:
            return None
        self.counts.lookups += 1
        exact = self._first.get(query.seq)
        if exact is not None:
            return (1.0, exact) if bounds.threshold < 1.0 else None
        candidates = list(set(self._candidates(query, bounds)[0].tolist()))
        self.counts.candidates += len(candidates)
        return self._verify(query, candidates, bounds, first_only) if candidates else None

    def _candidates(self, query: Query, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
        """Kept texts that pass the prefix, length, position and bucket bounds (a text may
        appear more than once), and for each an upper bound on its token overlap.

        The position test at a hit, min(m - pos_x, n - pos_y) >= need(m + n), splits in two
        tests on stored numbers: n <= max_total(m - pos_x) - m (per probe, and by bisection
        on the sorted part of a posting) and m <= the entry's longest partner h.
        """
        m = query.length
        query.prepare(self._rank)
        probe = bounds.prefix_len(m) - query.unknown  # unknown elements come first
        if probe <= 0:
            return _NONE, _NONE
        short = bounds.short_len(m)
        shortest = min(bounds.shortest_partner(m), _CAP)  # n saturates at _CAP
        max_total = bounds.max_total
        sort_min = rouge_postings.SORT_MIN
        core, tail = self._core, self._tail
        hits = Hits()
        for pos, e in enumerate(query.known[:probe], start=query.unknown):
            most = min(max_total(m - pos) - m, _CAP)
            for posting in (core.get(e), tail.get(e) if pos < short else None):
                if posting is None:
                    continue
                if len(posting.starts) == 1 and len(posting.entries) <= sort_min:
                    hits.add(posting.entries, posting.masks, most)  # most postings: inlined
                else:
                    posting.take(shortest, most, hits)
        if not hits.counts and not hits.sorted_counts:
            return _NONE, _NONE
        packed, masks, longest = hits.arrays()
        n = packed >> 48
        ok = ((packed & _CAP) >= min(m, _CAP)) & (n <= longest)
        texts = ((packed[ok] >> 16) & 0xFFFFFFFF).astype(np.int64)
        if not len(texts) or not query.bounded:
            return texts, np.minimum(n[ok].astype(np.int64), m)
        need = bounds.need_table(m + _CAP)[m + n[ok]]
        reach = query.reach(masks[ok])
        close = reach >= need
        texts, need, reach = texts[close], need[close], reach[close]
        sketch = self._sketches.bound(texts, query.counts)
        close = sketch >= need
        return texts[close], np.minimum(reach[close], sketch[close])

    def _nearest_above(self, query: Query, bounds: Bounds) -> tuple[float, int, bool]:
        """``(max F, first index reaching it, exact)``, exact when max F > the bounds'
        threshold; otherwise the best F among the texts verified (a lower bound, at most the
        threshold). Unlike :meth:`_search`, candidates are verified in order of their upper
        bound on F, 2 * overlap bound / (m + n), in chunks, stopping once no bound left can
        reach the best F found (a float F exceeds 2L/(m+n) by ~1e-15 at most, far below
        1e-9)."""
        if query.length == 0 or not self._texts:
            return 0.0, -1, True
        self.counts.lookups += 1
        exact = self._first.get(query.seq)
        if exact is not None and bounds.threshold < 1.0:
            return 1.0, exact, True
        texts, overlap = self._candidates(query, bounds)
        texts, first = np.unique(texts, return_index=True)
        self.counts.candidates += len(texts)
        m, lengths = query.length, np.frombuffer(self._lengths, dtype=np.int64)[texts]
        upper = 2 * np.minimum(np.minimum(overlap[first], lengths), m) / (m + lengths)
        order = np.lexsort((texts, -upper))  # highest bound first, then lowest index
        texts, lengths, upper = texts[order], lengths[order], upper[order]
        best, best_i = 0.0, -1
        for start in range(0, len(texts), _CHUNK):
            if upper[start] + 1e-9 < best:
                break
            chunk = texts[start : start + _CHUNK]
            self.counts.lcs += len(chunk)
            others = [self._seqs[c] for c in chunk.tolist()]
            lcs = process.cdist([query.seq], others, scorer=LCSseq.similarity, dtype=np.int64)
            scores = fmeasures(lcs[0], lengths[start : start + _CHUNK], m)
            top = scores.max()
            if top > best or (top == best and best_i >= 0):
                at = chunk[scores == top].min()
                if top > best or at < best_i:
                    best, best_i = float(top), int(at)
        return best, best_i, best > bounds.threshold

    def _verify(
        self, query: Query, candidates: list[int], bounds: Bounds, first_only: bool
    ) -> tuple[float, int] | None:
        """Exact LCS and reference F for each candidate; the best above the threshold, the
        first index among equals (candidates are taken in index order)."""
        candidates.sort()
        if len(candidates) > _BATCH:
            return self._best(query, candidates, bounds.threshold)
        m, seq, seqs = query.length, query.seq, self._seqs
        need, similarity = bounds.need, LCSseq.similarity
        best, best_i = bounds.threshold, -1
        counts = self.counts
        for c in candidates:
            counts.lcs += 1
            other = seqs[c]
            n = len(other)
            lcs = similarity(seq, other, score_cutoff=need(m + n))
            if not lcs:
                continue
            score = fmeasure(lcs, n, m)
            if score > best:
                best, best_i = score, c
                if first_only:
                    break
        return None if best_i < 0 else (best, best_i)

    def _best(self, query: Query, texts: list[int], threshold: float) -> tuple[float, int] | None:
        """:meth:`_verify` for many candidates at once: LCS lengths in C, F in numpy."""
        self.counts.lcs += len(texts)
        others = [self._seqs[c] for c in texts]
        lcs = process.cdist([query.seq], others, scorer=LCSseq.similarity, dtype=np.int64)[0]
        lengths = np.frombuffer(self._lengths, dtype=np.int64)[texts]
        scores = fmeasures(lcs, lengths, query.length)
        best = int(np.argmax(scores))  # the first of equal maxima
        return (float(scores[best]), texts[best]) if scores[best] > threshold else None

    def _scan(self, query: Query) -> tuple[float, int]:
        """Exact max F over every kept text (LCS lengths in C, F in numpy)."""
        if query.length == 0 or not self._texts:
            return 0.0, -1
        self.counts.scanned += len(self._seqs)
        lcs = process.cdist([query.seq], self._seqs, scorer=LCSseq.similarity, dtype=np.int64)[0]
        scores = fmeasures(lcs, np.frombuffer(self._lengths, dtype=np.int64), query.length)
        best = int(np.argmax(scores))  # the first of equal maxima
        return (float(scores[best]), best) if scores[best] > 0 else (0.0, -1)
