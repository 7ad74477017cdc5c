"""Exact, fast ROUGE-L novelty: the Self-Instruct rule "reject a candidate whose ROUGE-L F
against any kept text exceeds the threshold", deciding and scoring exactly as
``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)`` does.

Reference semantics (every answer here equals them bit for bit):

* tokens are ``re.findall(r"[a-z0-9]+", text.lower())``;
* if either side has no tokens, F = 0 (such a text never blocks anything);
* with L = LCS length, p = L/len(kept), r = L/len(candidate), F = 2*p*r/(p+r) in floating
  point. That is *not* always bit-equal to 2L/(m+n) (L=21, m=23, n=37 gives
  0.6999999999999998), so every decision is made with that very float expression;
* a candidate is similar iff max F over the kept texts > threshold.

Why the pruning is exact. The float F is within a few ulps (~1e-15) of the exact 2L/(m+n),
so F > t implies 2L/(m+n) > t' = t - 1e-9; every bound below uses t' in exact integer
arithmetic (:class:`_Bounds`), so it never prunes a pair that could pass. For lengths m, n
a pair needs L >= need(m+n), the least integer with 2L > t'(m+n). Then:

1. **length**: L <= min(m, n), so need(m+n) <= min(m, n);
2. **prefix** (set-similarity joins): write each text as the *set* of its elements
   (token, k-th occurrence); |X ∩ Y| is the multiset token overlap and L <= |X ∩ Y|. Sort
   every text's elements by one fixed total order. The smallest common element c of X and
   Y has at least |X ∩ Y| - 1 common elements after it in both, so it sits at 0-based
   position <= |X| - |X ∩ Y| in X and likewise in Y. Each kept text is therefore posted
   under the first ``prefix_len(n)`` elements of its order only (enough for its least
   demanding admissible partner), and a candidate probes its own first ``prefix_len(m)``;
3. **position**: at that hit, at most ``m - pos_x`` and ``n - pos_y`` common elements remain
   (c included), so a hit only counts if both are >= need(m+n). A candidate with
   L >= need has its hit at c pass, so keeping candidates with *some* passing hit is exact;
4. **bucket counts**: every text keeps how many of its tokens fall in each of 64 buckets
   (token id mod 64). sum over buckets of min(count_x, count_y) >= |X ∩ Y| >= L, so a
   candidate whose bucket bound is < need(m+n) is dropped;
5. survivors get the exact LCS (``rapidfuzz.distance.LCSseq`` on token ids, one code point
   per token) and the reference float expression decides.

The order puts rare elements first so prefixes and postings stay short. Frequencies are
those of the texts added so far, frozen between rebuilds (each time the index doubles) so
stored prefixes and probes always use the same order; an element first seen after a rebuild
sorts before all others, in id order, which keeps the order total and fixed. A candidate's
elements that no kept text has are placed first: they match nothing, and the position
argument in 2 only counts elements before c, so any placement of non-common elements is
sound.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

from selfinstruct.filters.base import Drop

__all__ = ["DEFAULT_THRESHOLD", "RougeIndex", "RougeNovelty", "fmeasure", "rouge_l_f", "tokenize"]

DEFAULT_THRESHOLD = 0.7
_TOKEN_RE = re.compile(r"[a-z0-9]+")
# Pruning uses t - _MARGIN; float F differs from 2L/(m+n) by ~1e-15 at most, far below it.
_MARGIN = Fraction(1, 10**9)
# Element id of the k-th occurrence (k from 0) of token id `tid`: tid + k * _STRIDE.
_STRIDE = 1 << 32
# Rank of an element first seen after the last rebuild: below every ranked one, in id order.
_NEW = 1 << 62
_FIRST_REBUILD = 64
# Posting entries pack (text index, length, slack) into one int64; lengths and slacks
# saturate at _CAP, and a saturated length marks an entry that only the LCS may reject.
_CAP = 0xFFFF
_SORT_MIN = 32  # postings this short are taken whole, never sorted
_BUCKETS = 64
_SURROGATES = range(0xD800, 0xE000)  # code points token ids skip
_MAX_CODE_POINT = 0x10FFFF

Seq = str | tuple[int, ...]


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


def rouge_l_f(a_tokens: Sequence[str], b_tokens: Sequence[str]) -> float:
    """ROUGE-L F of two token lists, equal to rouge-score's ``fmeasure`` (it is symmetric)."""
    if not a_tokens or not b_tokens:
        return 0.0
    lcs = LCSseq.similarity(list(a_tokens), list(b_tokens))
    return fmeasure(lcs, len(b_tokens), len(a_tokens))


class _Bounds:
    """Integer pruning bounds for one threshold t, with t' = t - 1e-9 as an exact fraction.

    ``need(s)`` is the least L with 2L > t' * s (and L >= 1): two texts of s tokens together
    with float F > t have an LCS of at least need(s).
    """

    def __init__(self, threshold: float) -> None:
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
            size = max(max_total + 1, 2 * len(self.table), 2 * _CAP + 2)
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


class _Vocabulary:
    """Token -> integer id (from 1; 0 stands for a token no kept text has).

    Id sequences are encoded as strings, one code point per token, which rapidfuzz compares
    fastest; ids skip the surrogate range so an id *is* its code point. Past the last code
    point (over a million distinct tokens) sequences become tuples of ints instead.
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._next = 1
        self.wide = False

    def __len__(self) -> int:
        return len(self._ids)

    def lookup(self, tokens: Iterable[str]) -> list[int]:
        get = self._ids.get
        return [get(token, 0) for token in tokens]

    def intern(self, tokens: Iterable[str]) -> list[int]:
        ids = self._ids
        out = []
        for token in tokens:
            tid = ids.get(token)
            if tid is None:
                tid = ids[token] = self._allocate()
            out.append(tid)
        return out

    def _allocate(self) -> int:
        tid = self._next
        if tid in _SURROGATES:
            tid = _SURROGATES.stop
        self._next = tid + 1
        if tid > _MAX_CODE_POINT:
            self.wide = True
        return tid

    def encode(self, ids: list[int]) -> Seq:
        if self.wide:
            return tuple(ids)
        return "".join(map(chr, ids))

    @staticmethod
    def decode(seq: Seq) -> list[int]:
        if isinstance(seq, str):
            return list(map(ord, seq))
        return list(seq)


def _elements(ids: list[int]) -> list[int]:
    """The multiset of token ids as a set: the k-th occurrence of id t is t + k * 2**32."""
    if len(set(ids)) == len(ids):
        return ids
    seen: dict[int, int] = {}
    out = []
    for tid in ids:
        k = seen.get(tid, 0)
        seen[tid] = k + 1
        out.append(tid + k * _STRIDE)
    return out


def _bucket_counts(ids: list[int]) -> bytes:
    """How many tokens fall in each bucket (id mod 64), saturating at 255."""
    counts = [0] * _BUCKETS
    for tid in ids:
        counts[tid % _BUCKETS] += 1
    if len(ids) < 256:
        return bytes(counts)
    return bytes(min(c, 255) for c in counts)


def _bucket_mask(elements: list[int]) -> int:
    """The buckets (token id mod 64) a text occupies, as 64 bits."""
    mask = 0
    for e in elements:
        mask |= 1 << (e % _BUCKETS)  # an element's id is its token's id mod 64
    return mask


def _popcount_bytes(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64, for numpy < 2.0 (no ``np.bitwise_count``)."""
    table = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)
    return table[values.view(np.uint8)].reshape(-1, 8).sum(axis=1)


_popcount = getattr(np, "bitwise_count", _popcount_bytes)


class _Sketches:
    """Per kept text, its bucket counts: a growable (texts x 64) uint8 matrix."""

    def __init__(self) -> None:
        self._rows = np.zeros((1024, _BUCKETS), dtype=np.uint8)
        self._size = 0

    def append(self, counts: bytes) -> None:
        if self._size == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        self._rows[self._size] = np.frombuffer(counts, dtype=np.uint8)
        self._size += 1

    def bound(self, texts: np.ndarray, counts: bytes) -> np.ndarray:
        """sum over buckets of min(count_text, count_query): >= the token overlap.

        A saturated (255) stored count only lowers min() where the query's count exceeds
        255 too; the caller skips this bound for such queries.
        """
        query = np.frombuffer(counts, dtype=np.uint8)
        return np.minimum(self._rows[texts], query).sum(axis=1, dtype=np.int64)


class _Query:
    """A text prepared for lookups: encoded ids, bucket counts, elements in the order."""

    __slots__ = ("bounded", "counts", "ids", "known", "length", "levels", "seq", "unknown")

    def __init__(self, vocab: _Vocabulary, text: str) -> None:
        self.ids = vocab.lookup(tokenize(text))
        self.length = len(self.ids)
        self.seq = vocab.encode(self.ids)
        self.counts = b""
        self.levels: list[np.uint64] = []
        self.bounded = False
        self.known: list[int] = []
        self.unknown = 0

    def prepare(self, rank: dict[int, int]) -> None:
        """Elements some kept text has (``known``, in order), how many none has, and the
        bucket counts, also as ``levels``: level j holds the buckets with more than j
        tokens, so sum over j of |level j & B| counts the tokens in a bucket set B."""
        elements = _elements(self.ids)
        known = [e for e in elements if e in rank]
        known.sort(key=rank.__getitem__)
        self.known = known
        self.unknown = len(elements) - len(known)
        counts = [0] * _BUCKETS
        levels: list[int] = []
        for tid in self.ids:
            bucket = tid % _BUCKETS
            j = counts[bucket]
            counts[bucket] = j + 1
            if j == len(levels):
                levels.append(0)
            levels[j] |= 1 << bucket
        self.bounded = len(levels) < 255  # a count over 255 would not fit the sketches
        self.counts = bytes(counts) if self.bounded else b""
        self.levels = [np.uint64(level) for level in levels]

    def reach(self, masks: np.ndarray) -> np.ndarray:
        """For kept texts' bucket masks: how many of this text's tokens fall in a bucket the
        kept text occupies, an upper bound on their token overlap."""
        total = np.zeros(len(masks), dtype=np.int64)
        for level in self.levels:
            total += _popcount(masks & level)
        return total


class _Posting:
    """The kept texts posted under one element: packed entries (length n, text index i,
    longest partner h as ``n << 48 | i << 16 | h``, uint64) and, in a parallel array, each
    text's bucket mask. Entries are sorted (hence by n) up to ``ordered``; later ones are
    appended as texts arrive and sorted in once they are a quarter of the list."""

    __slots__ = ("entries", "masks", "ordered")

    def __init__(self) -> None:
        self.entries = array("Q")
        self.masks = array("Q")
        self.ordered = 0

    def append(self, entry: int, mask: int) -> None:
        self.entries.append(entry)
        self.masks.append(mask)

    def take(self, shortest: int, longest: int, entries: array, masks: array) -> int:
        """Append the entries that may have shortest <= n <= longest (the sorted ones in
        that range, every unsorted one) to ``entries``/``masks``; return how many."""
        total = len(self.entries)
        if total <= _SORT_MIN:  # too short to be worth a bisection
            entries.extend(self.entries)
            masks.extend(self.masks)
            return total
        unsorted = total - self.ordered
        if unsorted > max(_SORT_MIN, self.ordered // 4):
            self._sort()
            unsorted = 0
        lo = bisect_left(self.entries, shortest << 48, 0, self.ordered)
        hi = bisect_left(self.entries, (longest + 1) << 48, lo, self.ordered)
        if hi > lo:
            entries.extend(self.entries[lo:hi])
            masks.extend(self.masks[lo:hi])
        if unsorted:
            entries.extend(self.entries[self.ordered :])
            masks.extend(self.masks[self.ordered :])
        return hi - lo + unsorted

    def _sort(self) -> None:
        values = np.frombuffer(self.entries, dtype=np.uint64)
        order = np.argsort(values, kind="stable")
        self.entries = array("Q", values[order].tobytes())
        self.masks = array("Q", np.frombuffer(self.masks, dtype=np.uint64)[order].tobytes())
        self.ordered = len(self.entries)


class RougeIndex:
    """The kept texts, answering "is this new text novel?" exactly as rouge-score would.

    ``add`` always adds; ``is_novel`` and ``find_similar`` are the fast, pruned lookups;
    ``most_similar`` also gives the exact maximum when it is below the threshold (then by an
    LCS against every kept text in C, ~0.1 µs a text: fine for tens of thousands).
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number, got {threshold!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self._bounds = _Bounds(self.threshold)
        self._vocab = _Vocabulary()
        self._texts: list[str] = []
        self._seqs: list[Seq] = []
        self._lengths = array("q")  # token count of each kept text
        self._first: dict[Seq, int] = {}  # token sequence -> first index holding it
        self._sketches = _Sketches()
        self._freq: dict[int, int] = {}  # element -> number of kept texts holding it
        self._rank: dict[int, int] = {}  # element -> position in the frozen order
        # element -> the texts posted under it (see _post)
        self._core: dict[int, _Posting] = {}
        self._tail: dict[int, _Posting] = {}
        self._next_rebuild = _FIRST_REBUILD

    def __len__(self) -> int:
        return len(self._texts)

    def text(self, i: int) -> str:
        """The i-th added text, as given."""
        return self._texts[i]

    # -- adding ---------------------------------------------------------------------------

    def add(self, text: str) -> int:
        """Add a text unconditionally (a seed, or a kept candidate); return its index."""
        ids = self._vocab.intern(tokenize(text))
        if self._vocab.wide and self._seqs and isinstance(self._seqs[0], str):
            self._widen()
        seq = self._vocab.encode(ids)
        i = len(self._texts)
        self._texts.append(text)
        self._seqs.append(seq)
        self._lengths.append(len(ids))
        self._first.setdefault(seq, i)
        self._sketches.append(_bucket_counts(ids))
        elements = _elements(ids)
        freq, rank = self._freq, self._rank
        for e in elements:
            freq[e] = freq.get(e, 0) + 1
            if e not in rank:
                rank[e] = e - _NEW
        if len(self._texts) >= self._next_rebuild:
            self._rebuild()
        else:
            self._post(i, elements)
        return i

    def _post(self, i: int, elements: list[int]) -> None:
        """Post text i under each element of its prefix (see :class:`_Posting`), with the
        longest partner each position can serve, h = max_total(n - pos) - n; n and h
        saturate at _CAP, which keeps every test on them conservative.

        Positions below ``core_len`` go to the core postings, the rest of the prefix (only
        useful to shorter candidates) to the tail postings.
        """
        n = len(elements)
        size = self._bounds.prefix_len(n)
        if size == 0:
            return
        core = self._bounds.core_len(n)
        head = min(n, _CAP) << 48 | i << 16
        mask = _bucket_mask(elements)
        ordered = sorted(elements, key=self._rank.__getitem__)
        max_total = self._bounds.max_total
        for pos in range(size):
            postings = self._core if pos < core else self._tail
            posting = postings.get(ordered[pos])
            if posting is None:
                posting = postings[ordered[pos]] = _Posting()
            posting.append(head | min(max_total(n - pos) - n, _CAP), mask)

    def _rebuild(self) -> None:
        """Re-rank elements by frequency (rarest first) and re-post every prefix."""
        freq = self._freq
        order = sorted(freq, key=lambda e: (freq[e], e))
        self._rank = {e: r for r, e in enumerate(order)}
        self._core, self._tail = {}, {}
        decode = self._vocab.decode
        for i, seq in enumerate(self._seqs):
            self._post(i, _elements(decode(seq)))
        self._next_rebuild = 2 * len(self._texts)

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
        return self._search(_Query(self._vocab, text), first_only=False)

    def is_novel(self, text: str) -> bool:
        """True iff max ROUGE-L F against every kept text is <= threshold."""
        return self._search(_Query(self._vocab, text), first_only=True) is None

    def most_similar(self, text: str) -> tuple[float, int]:
        """Exact ``(max F, index of the first kept text reaching it)``; ``(0.0, -1)`` when no
        kept text shares a token with ``text`` (max F is then 0)."""
        query = _Query(self._vocab, text)
        found = self._search(query, first_only=False)
        return found if found is not None else self._scan(query)

    def add_if_novel(self, text: str) -> tuple[bool, float, int]:
        """Add ``text`` iff it is novel. Returns ``(added, max F, index of the nearest)``,
        exact either way, as :meth:`most_similar` gives them (before adding)."""
        query = _Query(self._vocab, text)
        found = self._search(query, first_only=False)
        if found is not None:
            return False, found[0], found[1]
        score, nearest = self._scan(query)
        self.add(text)
        return True, score, nearest

    def _search(self, query: _Query, *, first_only: bool) -> tuple[float, int] | None:
        """Max F over the candidates that pass every bound, if it exceeds the threshold."""
        if query.length == 0 or not self._texts:
            return None
        exact = self._first.get(query.seq)
        if exact is not None:
            return (1.0, exact) if self.threshold < 1.0 else None
        candidates = self._candidates(query)
        return self._verify(query, candidates, first_only) if candidates else None

    def _candidates(self, query: _Query) -> list[int]:
        """Kept texts that pass the prefix, length, position and bucket bounds.

        The position test at a hit, min(m - pos_x, n - pos_y) >= need(m + n), splits in two
        tests on stored numbers: n <= max_total(m - pos_x) - m (per probe, and by bisection
        on the sorted part of a posting) and m <= the entry's longest partner h.
        """
        m = query.length
        query.prepare(self._rank)
        probe = self._bounds.prefix_len(m) - query.unknown  # unknown elements come first
        if probe <= 0:
            return []
        short = self._bounds.short_len(m)
        shortest = self._bounds.shortest_partner(m)
        max_total = self._bounds.max_total
        core, tail = self._core, self._tail
        entries, masks, longest, lengths = array("Q"), array("Q"), [], []
        for pos, e in enumerate(query.known[:probe], start=query.unknown):
            most = min(max_total(m - pos) - m, _CAP)
            for posting in (core.get(e), tail.get(e) if pos < short else None):
                if posting is not None:
                    longest.append(most)
                    lengths.append(posting.take(shortest, most, entries, masks))
        if not entries:
            return []
        packed = np.frombuffer(entries, dtype=np.uint64)
        n = packed >> 48
        ok = (packed & _CAP) >= min(m, _CAP)
        ok &= n <= np.repeat(np.array(longest, dtype=np.uint64), lengths)
        texts = (packed[ok] >> 16) & 0xFFFFFFFF
        if not len(texts) or not query.bounded:
            return list(set(texts.tolist()))
        need = self._bounds.need_table(m + _CAP)[m + n[ok]]
        close = query.reach(np.frombuffer(masks, dtype=np.uint64)[ok]) >= need
        texts, need = texts[close], need[close]
        texts = texts[self._sketches.bound(texts, query.counts) >= need]
        return list(set(texts.tolist()))

    def _verify(
        self, query: _Query, candidates: list[int], first_only: bool
    ) -> tuple[float, int] | None:
        """Exact LCS and reference F for each candidate; the best above the threshold."""
        m, seq, seqs = query.length, query.seq, self._seqs
        need, similarity = self._bounds.need, LCSseq.similarity
        best, best_i = self.threshold, -1
        for c in sorted(candidates):
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

    def _scan(self, query: _Query) -> tuple[float, int]:
        """Exact max F over every kept text: all LCS lengths in C, then the reference float
        expression vectorized (numpy float64 rounds each operation exactly as Python)."""
        if query.length == 0 or not self._texts:
            return 0.0, -1
        lcs = process.cdist([query.seq], self._seqs, scorer=LCSseq.similarity, dtype=np.int64)[0]
        lengths = np.frombuffer(self._lengths, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = lcs / lengths
            recall = lcs / query.length
            scores = 2 * precision * recall / (precision + recall)
        scores[lcs == 0] = 0.0
        best = int(np.argmax(scores))
        return (float(scores[best]), best) if scores[best] > 0 else (0.0, -1)


class RougeNovelty:
    """The ROUGE-L rule as a :class:`~selfinstruct.filters.base.TextFilter`.

    ``filter`` only looks: the caller adds each text it keeps with ``index.add(text)``.
    """

    name = "rouge"

    def __init__(
        self, index: RougeIndex | None = None, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        self.index = index if index is not None else RougeIndex(threshold)

    def filter(self, text: str) -> Drop | None:
        found = self.index.find_similar(text)
        if found is None:
            return None
        score, nearest = found
        return Drop("rouge_similar", {"score": score, "most_similar": self.index.text(nearest)})
