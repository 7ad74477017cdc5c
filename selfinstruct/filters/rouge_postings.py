"""The data structures behind :class:`~selfinstruct.filters.rouge_index.RougeIndex`: token
ids, texts as element sets, bucket sketches, prepared queries and posting lists.

A text's *elements* are its tokens made a set: the k-th occurrence (from 0) of token id t is
the element t + k * 2**32, so the multiset overlap of two texts is the size of the
intersection of their element sets. Buckets are token id mod 64.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from selfinstruct.filters.rouge_score import tokenize

__all__ = [
    "Hits",
    "Posting",
    "Query",
    "SearchCounts",
    "Seq",
    "Sketches",
    "Vocabulary",
    "buckets",
    "to_elements",
]

# Element id of the k-th occurrence (k from 0) of token id `tid`: tid + k * _STRIDE.
_STRIDE = 1 << 32
SORT_MIN = 32  # postings this short are taken whole, never sorted
_STARTS_MAX = 1024  # sorted postings index their entries by length up to this
_BUCKETS = 64
_SURROGATES = range(0xD800, 0xE000)  # code points token ids skip
_MAX_CODE_POINT = 0x10FFFF

Seq = str | tuple[int, ...]


class Vocabulary:
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


def to_elements(ids: list[int]) -> list[int]:
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


def buckets(ids: list[int]) -> tuple[list[int], list[int]]:
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


class Sketches:
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


class Query:
    """A text prepared for lookups: encoded ids, bucket counts, elements in the order."""

    __slots__ = (
        "bounded", "counts", "ids", "known", "length", "levels", "seq", "tokens", "unknown"
    )  # fmt: skip

    def __init__(self, vocab: Vocabulary, text: str) -> None:
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
        bucket counts and levels (see :func:`buckets`)."""
        elements = to_elements(self.ids)
        known = [e for e in elements if e in rank]
        known.sort(key=rank.__getitem__)
        self.known = known
        self.unknown = len(elements) - len(known)
        counts, levels = buckets(self.ids)
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


class Posting:
    """The kept texts posted under one element. Each entry packs a text's length n, index i
    and longest partner h as ``n << 48 | i << 16 | h`` (uint64), beside the text's bucket
    mask. New entries are appended to ``entries``/``masks``; once there are more than
    SORT_MIN of them (and a quarter of the posting), they are merged into the numpy arrays
    sorted by entry, hence by n, where ``starts[n]`` is the first entry of length >= n (for
    n up to _STARTS_MAX; longer texts are rare and simply kept in every range reaching it)."""

    __slots__ = ("entries", "masks", "sorted_entries", "sorted_masks", "starts")

    def __init__(self) -> None:
        self.entries = array("Q")
        self.masks = array("Q")
        self.sorted_entries = _NO_ENTRIES
        self.sorted_masks = _NO_ENTRIES
        self.starts: list[int] = [0]

    def take(self, shortest: int, longest: int, hits: Hits) -> None:
        """Add to ``hits`` the entries that may have shortest <= n <= longest: the sorted
        ones in that range, and every recent one."""
        if len(self.entries) > max(SORT_MIN, len(self.sorted_entries) // 4):
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


class Hits:
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


@dataclass
class SearchCounts:
    """Work done by lookups, for tests and benchmarks: candidates that passed every bound,
    exact LCS computations, and texts compared by full scans (``most_similar`` only)."""

    lookups: int = 0
    candidates: int = 0
    lcs: int = 0
    scanned: int = 0
