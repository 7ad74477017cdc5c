"""Every run file the export package reads comes through here (one place to repoint).

The names, the manifest reader and the cost helpers are the store's and pricing's public
ones; :func:`read_jsonl_models` skips a torn last line and repairs nothing.
"""

from __future__ import annotations

from selfinstruct.datafiles import read_jsonl_models
from selfinstruct.pricing import UsageLine, load_prices, usage_lines
from selfinstruct.store import EXAMPLES, MANIFEST, REQUESTS, read_manifest

__all__ = [
    "EXAMPLES",
    "MANIFEST",
    "REQUESTS",
    "UsageLine",
    "load_prices",
    "read_jsonl_models",
    "read_manifest",
    "usage_lines",
]
