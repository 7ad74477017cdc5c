"""Every run file the report reads comes through here (one place to repoint).

The names, the manifest reader and the cost helpers are the store's and pricing's public
ones; :func:`read_jsonl_models` skips a torn last line and repairs nothing.
"""

from __future__ import annotations

from selfinstruct.datafiles import read_jsonl_models
from selfinstruct.pricing import UsageLine, format_usd, load_prices, total_cost, usage_lines
from selfinstruct.store import EXAMPLES, INSTRUCTIONS, REJECTED, REQUESTS, read_manifest

__all__ = [
    "EXAMPLES",
    "INSTRUCTIONS",
    "REJECTED",
    "REQUESTS",
    "UsageLine",
    "format_usd",
    "load_prices",
    "read_jsonl_models",
    "read_manifest",
    "total_cost",
    "usage_lines",
]
