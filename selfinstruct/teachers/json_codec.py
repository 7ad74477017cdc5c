"""JSON on the request path, with orjson (~1 µs a request body or reply instead of ~5-8).

Output is the standard library's ``json.dumps(value, ensure_ascii=False, separators=(",",
":"))`` in UTF-8, and input what ``json.loads`` accepts: where orjson refuses (a lone
surrogate, an integer past 64 bits, ``NaN`` in a reply), the standard library does it (for a
lone surrogate, which UTF-8 cannot carry, escaped as ``\\udXXX``). Differences that keep the
data: an exponent may be written shorter (``1e-5`` for ``1e-05``); and one that does not: a NaN
or infinite float is written ``null`` (``json`` writes ``NaN``, which is not JSON).
:func:`canonical` (the cache key's text) has no differences at all: orjson only where it
writes the same bytes as the standard library.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate, a 65-bit integer
        return json.dumps(value, separators=(",", ":")).encode()  # ASCII, with \u escapes


def loads(raw: bytes | str) -> Any:
    """Parse JSON; ValueError (``json.JSONDecodeError`` or ``UnicodeDecodeError``) if it is not."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # e.g. NaN, a lone surrogate escape: json takes them
        return json.loads(raw)


def canonical(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in
    UTF-8, byte for byte (cache keys hash it): written by orjson where it writes those same
    bytes, else by the standard library (a float with an exponent below -4 or from 16, which
    orjson writes another way, a NaN; anything orjson refuses, or of another type)."""
    if _written_alike(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate, a 65-bit integer
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _written_alike(value: Any) -> bool:
    """Whether orjson (sorting keys) writes ``value`` as ``json`` does: strings, integers,
    booleans, None, floats 0 or 1e-4 <= |x| < 1e16, and lists, tuples and str-keyed dicts of
    them (exact types: a subclass may serialise otherwise)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return value == 0.0 or 1e-4 <= abs(value) < 1e16
    if kind is list or kind is tuple:
        return all(map(_written_alike, value))
    if kind is dict:
        return all(type(key) is str for key in value) and all(map(_written_alike, value.values()))
    return False
