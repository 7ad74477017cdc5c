"""Stage-1 instruction heuristics of Self-Instruct and Alpaca, one small class per rule.

Each rule has a ``name`` (also the ``reason`` of the :class:`Drop` it returns) and a
``filter(text)`` that returns ``None`` to keep the instruction. Words are ``text.split()``.
The ROUGE-L novelty rule lives in :mod:`selfinstruct.filters.rouge`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence

from selfinstruct.config_sections import FilterConfig
from selfinstruct.filters.base import Drop, TextFilter

__all__ = [
    "BannedPrefix",
    "BlacklistedWord",
    "ExactDuplicate",
    "NonAsciiStart",
    "StartsWithPunctuation",
    "TooLong",
    "TooShort",
    "build_instruction_filters",
    "first_drop",
    "normalize",
]


def normalize(text: str) -> str:
    """Lowercase with whitespace runs collapsed: the key of :class:`ExactDuplicate`."""
    return " ".join(text.lower().split())


class TooShort:
    """Fewer than ``min_words`` words (the paper drops instructions of 3 words or fewer)."""

    name = "too_short"

    def __init__(self, min_words: int) -> None:
        self.min_words = min_words

    def filter(self, text: str) -> Drop | None:
        words = len(text.split())
        if words < self.min_words:
            return Drop(self.name, {"words": words, "min_words": self.min_words})
        return None


class TooLong:
    """More than ``max_words`` words."""

    name = "too_long"

    def __init__(self, max_words: int) -> None:
        self.max_words = max_words

    def filter(self, text: str) -> Drop | None:
        words = len(text.split())
        if words > self.max_words:
            return Drop(self.name, {"words": words, "max_words": self.max_words})
        return None


class BlacklistedWord:
    """Contains a keyword the model cannot act on (image, file, draw, go to ...).

    Alpaca's ``find_word_in_string`` matches ``\\b{word}\\b`` case-insensitively; here the
    edges are ``(?<!\\w)``/``(?!\\w)`` (the same for word-character keywords, and also right
    for keywords such as ``c++``) and a space inside a phrase matches any whitespace run.
    """

    name = "blacklisted_word"

    def __init__(self, words: Iterable[str]) -> None:
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        bodies: list[str] = []
        for word in words:
            parts = word.split()
            if parts:
                body = r"\s+".join(re.escape(part) for part in parts)
                bodies.append(body)
                self.patterns.append((word, re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)))
        # one pass for the common case, no keyword at all; then the first keyword in order
        either = rf"(?<!\w)(?:{'|'.join(bodies)})(?!\w)" if bodies else r"(?!)"
        self._any = re.compile(either, re.IGNORECASE)

    def filter(self, text: str) -> Drop | None:
        if self._any.search(text) is None:
            return None
        for word, pattern in self.patterns:
            if pattern.search(text):
                return Drop(self.name, {"word": word})
        return None


class BannedPrefix:
    """Starts with a banned prefix such as "Write a program" (case-insensitive)."""

    name = "banned_prefix"

    def __init__(self, prefixes: Iterable[str]) -> None:
        self.prefixes = [prefix for prefix in prefixes if prefix.strip()]

    def filter(self, text: str) -> Drop | None:
        head = normalize(text)
        for prefix in self.prefixes:
            if head.startswith(normalize(prefix)):
                return Drop(self.name, {"prefix": prefix})
        return None


class StartsWithPunctuation:
    """First character is ASCII punctuation (``string.punctuation``)."""

    name = "starts_with_punctuation"

    def filter(self, text: str) -> Drop | None:
        first = text.lstrip()[:1]
        if first and first in string.punctuation:
            return Drop(self.name, {"char": first})
        return None


class NonAsciiStart:
    """First character is not ASCII."""

    name = "non_ascii_start"

    def filter(self, text: str) -> Drop | None:
        first = text.lstrip()[:1]
        if first and not first.isascii():
            return Drop(self.name, {"char": first})
        return None


class ExactDuplicate:
    """Same text as a seed or a kept instruction, ignoring case and whitespace.

    Stateful: the pipeline calls :meth:`add` for every seed and every kept instruction;
    :meth:`filter` itself remembers nothing.
    """

    name = "exact_duplicate"

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self.seen: dict[str, str] = {}
        for text in texts:
            self.add(text)

    def add(self, text: str) -> None:
        """Remember ``text`` (the first spelling of a normalised text is the one reported)."""
        self.seen.setdefault(normalize(text), text)

    def filter(self, text: str) -> Drop | None:
        original = self.seen.get(normalize(text))
        if original is not None:
            return Drop(self.name, {"duplicate_of": original})
        return None


def build_instruction_filters(config: FilterConfig) -> list[TextFilter]:
    """The stage-1 rules, cheapest first (the regex blacklist runs last)."""
    return [
        TooShort(config.min_words),
        TooLong(config.max_words),
        StartsWithPunctuation(),
        NonAsciiStart(),
        BannedPrefix(config.banned_prefixes),
        ExactDuplicate(),
        BlacklistedWord(config.blacklist),
    ]


def first_drop(filters: Sequence[TextFilter], text: str) -> Drop | None:
    """The first rule's :class:`Drop` for ``text``, or ``None`` when every rule keeps it."""
    for rule in filters:
        drop = rule.filter(text)
        if drop is not None:
            return drop
    return None
