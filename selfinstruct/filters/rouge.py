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
arithmetic (:class:`_Bounds`), so none can drop a pair that passes. A candidate of m
tokens and a kept text of n tokens need L >= need(m+n), the least integer with
2L > t'(m+n). Write each text as the *set* of its elements (token, k-th occurrence): the
token overlap |X ∩ Y| (a multiset intersection) bounds L. Then:

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
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
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
_FIRST_REBUILD = 128
_REBUILD_GROWTH = 4  # the order is rebuilt each time the index grows 4-fold
# Posting entries pack a length n and a partner length h in 16 bits each, saturating at
# _CAP: n == _CAP stands for any n >= _CAP, and every test stays conservative.
_CAP = 0xFFFF
_SORT_MIN = 32  # postings this short are taken whole, never sorted
_STARTS_MAX = 1024  # sorted postings index their entries by length up to this
_BATCH = 32  # more candidates than this are verified in one rapidfuzz call
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


def _buckets(ids: list[int]) -> tuple[list[int], list[int]]:
    """A text's tokens by bucket (token id mod 64): the count in each bucket, and the counts
    as ``levels`` of 64-bit masks, level j holding the buckets with more than j tokens (so
    level 0 is the buckets the text occupies, and sum over j of |level j & B| is how many
    of its tokens fall in a bucket set B)."""
    counts = [0] * _BUCKETS
    levels: list[int] = []
    for tid in ids:
        bucket = tid % _BUCKETS
        j = counts[bucket]
        counts[bucket] = j + 1
        if j == len(levels):
            levels.append(0)
        levels[j] |= 1 << bucket
    return counts, levels


def _popcount_bytes(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64, for numpy < 2.0 (no ``np.bitwise_count``)."""
    table = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)
    return table[values.view(np.uint8)].reshape(-1, 8).sum(axis=1)


_popcount = getattr(np, "bitwise_count", _popcount_bytes)


class _Sketches:
    """Per kept text, its 64 bucket counts (saturating at 255), one byte each."""

    def __init__(self) -> None:
        self._data = bytearray()

    def append(self, counts: list[int]) -> None:
        self._data += bytes(counts) if max(counts) < 256 else bytes(min(c, 255) for c in counts)

    def bound(self, texts: np.ndarray, counts: bytes) -> np.ndarray:
        """sum over buckets of min(count_text, count_query): >= the token overlap.

        A saturated (255) stored count only lowers min() where the query's count exceeds
        255 too; the caller skips this bound for such queries.
        """
        rows = np.frombuffer(self._data, dtype=np.uint8).reshape(-1, _BUCKETS)
        query = np.frombuffer(counts, dtype=np.uint8)
        return np.minimum(rows[texts], query).sum(axis=1, dtype=np.int64)


class _Query:
    """A text prepared for lookups: encoded ids, bucket counts, elements in the order."""

    __slots__ = (
        "bounded", "counts", "ids", "known", "length", "levels", "seq", "tokens", "unknown"
    )  # fmt: skip

    def __init__(self, vocab: _Vocabulary, text: str) -> None:
        self.tokens = tokenize(text)
        self.ids = vocab.lookup(self.tokens)
        self.length = len(self.ids)
        self.seq = vocab.encode(self.ids)
        self.counts = b""
        self.levels: list[np.uint64] = []
        self.bounded = False
        self.known: list[int] = []
        self.unknown = 0

    def prepare(self, rank: dict[int, int]) -> None:
        """Elements some kept text has (``known``, in order), how many none has, and the
        bucket counts and levels (see :func:`_buckets`)."""
        elements = _elements(self.ids)
        known = [e for e in elements if e in rank]
        known.sort(key=rank.__getitem__)
        self.known = known
        self.unknown = len(elements) - len(known)
        counts, levels = _buckets(self.ids)
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
    """The kept texts posted under one element. Each entry packs a text's length n, index i
    and longest partner h as ``n << 48 | i << 16 | h`` (uint64), beside the text's bucket
    mask. New entries are appended to ``entries``/``masks``; once there are more than
    _SORT_MIN of them (and a quarter of the posting), they are merged into the numpy arrays
    sorted by entry, hence by n, where ``starts[n]`` is the first entry of length >= n (for
    n up to _STARTS_MAX; longer texts are rare and simply kept in every range reaching it)."""

    __slots__ = ("entries", "masks", "sorted_entries", "sorted_masks", "starts")

    def __init__(self) -> None:
        self.entries = array("Q")
        self.masks = array("Q")
        self.sorted_entries = _NO_ENTRIES
        self.sorted_masks = _NO_ENTRIES
        self.starts: list[int] = [0]

    def take(self, shortest: int, longest: int, hits: _Hits) -> None:
        """Add to ``hits`` the entries that may have shortest <= n <= longest: the sorted
        ones in that range, and every recent one."""
        if len(self.entries) > max(_SORT_MIN, len(self.sorted_entries) // 4):
            self._merge()
        starts = self.starts
        lo = starts[min(shortest, len(starts) - 1)]
        hi = starts[longest + 1] if longest + 1 < len(starts) else len(self.sorted_entries)
        if hi > lo:
            hits.add_sorted(self.sorted_entries[lo:hi], self.sorted_masks[lo:hi], longest)
        if self.entries:
            hits.add(self.entries, self.masks, longest)

    def _merge(self) -> None:
        entries = np.concatenate([self.sorted_entries, np.frombuffer(self.entries, np.uint64)])
        masks = np.concatenate([self.sorted_masks, np.frombuffer(self.masks, np.uint64)])
        order = np.argsort(entries, kind="stable")
        self.sorted_entries, self.sorted_masks = entries[order], masks[order]
        lengths = self.sorted_entries >> 48
        top = min(int(lengths[-1]) + 1, _STARTS_MAX)  # starts[top] <= the end
        self.starts = np.searchsorted(lengths, np.arange(top + 1)).tolist()
        self.entries, self.masks = array("Q"), array("Q")


_NO_ENTRIES = np.zeros(0, dtype=np.uint64)


class _Hits:
    """The posting entries gathered for one candidate, each with the longest length its
    probe allows (recent entries copied into arrays, sorted ones kept as numpy slices)."""

    def __init__(self) -> None:
        self.entries, self.masks = array("Q"), array("Q")
        self.longest: list[int] = []
        self.counts: list[int] = []
        self.sorted_entries: list[np.ndarray] = []
        self.sorted_masks: list[np.ndarray] = []
        self.sorted_longest: list[int] = []
        self.sorted_counts: list[int] = []

    def add(self, entries: array, masks: array, longest: int) -> None:
        self.entries.extend(entries)
        self.masks.extend(masks)
        self.longest.append(longest)
        self.counts.append(len(entries))

    def add_sorted(self, entries: np.ndarray, masks: np.ndarray, longest: int) -> None:
        self.sorted_entries.append(entries)
        self.sorted_masks.append(masks)
        self.sorted_longest.append(longest)
        self.sorted_counts.append(len(entries))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entries, masks, longest length allowed for each entry)."""
        entries = np.frombuffer(self.entries, dtype=np.uint64)
        masks = np.frombuffer(self.masks, dtype=np.uint64)
        if self.sorted_entries:
            entries = np.concatenate([entries, *self.sorted_entries])
            masks = np.concatenate([masks, *self.sorted_masks])
        longest = np.repeat(
            np.array(self.longest + self.sorted_longest, dtype=np.uint64),
            self.counts + self.sorted_counts,
        )
        return entries, masks, longest


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
        self._masks = array("Q")  # buckets each kept text occupies (see _buckets)
        self._first: dict[Seq, int] = {}  # token sequence -> first index holding it
        self._sketches = _Sketches()
        self._freq: Counter[int] = Counter()  # element -> number of kept texts holding it
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
        counts, levels = _buckets(ids)
        self._sketches.append(counts)
        self._masks.append(levels[0] if levels else 0)
        elements = _elements(ids)
        self._freq.update(elements)
        rank = self._rank
        rank.update([(e, e - _NEW) for e in elements if e not in rank])
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
        mask = self._masks[i]
        ordered = sorted(elements, key=self._rank.__getitem__)
        max_total = self._bounds.max_total
        for pos in range(size):
            postings = self._core if pos < core else self._tail
            posting = postings.get(ordered[pos])
            if posting is None:
                posting = postings[ordered[pos]] = _Posting()
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
            self._post(i, _elements(decode(seq)))
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
        self._add(text, query.tokens)
        return True, score, nearest

    def find_or_add(self, text: str) -> tuple[float, int] | None:
        """The greedy dedup step: :meth:`find_similar`, and add ``text`` when it finds
        nothing (then returns ``None``). Skips the exact maximum of a novel text, which
        :meth:`add_if_novel` computes."""
        query = _Query(self._vocab, text)
        found = self._search(query, first_only=False)
        if found is None:
            self._add(text, query.tokens)
        return found

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
        shortest = min(self._bounds.shortest_partner(m), _CAP)  # n saturates at _CAP
        max_total = self._bounds.max_total
        core, tail = self._core, self._tail
        hits = _Hits()
        for pos, e in enumerate(query.known[:probe], start=query.unknown):
            most = min(max_total(m - pos) - m, _CAP)
            for posting in (core.get(e), tail.get(e) if pos < short else None):
                if posting is None:
                    continue
                if len(posting.starts) == 1 and len(posting.entries) <= _SORT_MIN:
                    hits.add(posting.entries, posting.masks, most)  # most postings: inlined
                else:
                    posting.take(shortest, most, hits)
        if not hits.counts and not hits.sorted_counts:
            return []
        packed, masks, longest = hits.arrays()
        n = packed >> 48
        ok = ((packed & _CAP) >= min(m, _CAP)) & (n <= longest)
        texts = (packed[ok] >> 16) & 0xFFFFFFFF
        if not len(texts) or not query.bounded:
            return list(set(texts.tolist()))
        need = self._bounds.need_table(m + _CAP)[m + n[ok]]
        close = query.reach(masks[ok]) >= need
        texts, need = texts[close], need[close]
        texts = texts[self._sketches.bound(texts, query.counts) >= need]
        return list(set(texts.tolist()))

    def _verify(
        self, query: _Query, candidates: list[int], first_only: bool
    ) -> tuple[float, int] | None:
        """Exact LCS and reference F for each candidate; the best above the threshold, the
        first index among equals (candidates are taken in index order)."""
        candidates.sort()
        if len(candidates) > _BATCH:
            return self._best(query, candidates)
        m, seq, seqs = query.length, query.seq, self._seqs
        need, similarity = self._bounds.need, LCSseq.similarity
        best, best_i = self.threshold, -1
        for c in candidates:
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

    def _best(self, query: _Query, texts: list[int]) -> tuple[float, int] | None:
        """:meth:`_verify` for many candidates at once: LCS lengths in C, F in numpy."""
        others = [self._seqs[c] for c in texts]
        lcs = process.cdist([query.seq], others, scorer=LCSseq.similarity, dtype=np.int64)[0]
        lengths = np.frombuffer(self._lengths, dtype=np.int64)[texts]
        scores = _fmeasures(lcs, lengths, query.length)
        best = int(np.argmax(scores))  # the first of equal maxima
        return (float(scores[best]), texts[best]) if scores[best] > self.threshold else None

    def _scan(self, query: _Query) -> tuple[float, int]:
        """Exact max F over every kept text (LCS lengths in C, F in numpy)."""
        if query.length == 0 or not self._texts:
            return 0.0, -1
        lcs = process.cdist([query.seq], self._seqs, scorer=LCSseq.similarity, dtype=np.int64)[0]
        scores = _fmeasures(lcs, np.frombuffer(self._lengths, dtype=np.int64), query.length)
        best = int(np.argmax(scores))  # the first of equal maxima
        return (float(scores[best]), best) if scores[best] > 0 else (0.0, -1)


def _fmeasures(lcs: np.ndarray, kept_lengths: np.ndarray, candidate_len: int) -> np.ndarray:
    """:func:`fmeasure` over arrays: numpy float64 rounds each operation exactly as Python
    does, and the operations are the same, in the same order, so the results are equal."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs / kept_lengths
        recall = lcs / candidate_len
        scores = 2 * precision * recall / (precision + recall)
    scores[lcs == 0] = 0.0
    return scores


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
