"""``selfinstruct stats FILE``: size, fields and text lengths of an exported dataset.

Reads a JSONL file, a JSON list, a Parquet file or a directory saved by
``Dataset.save_to_disk`` (one table per split). For every text field it gives length
percentiles in words (whitespace-separated), nearest-rank: p50, p90, p99 and the maximum.
Conversation fields (``messages``, ``conversations``) are measured per role, as
``messages[user]`` or ``conversations[gpt]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.datafiles import import_datasets, iter_rows
from selfinstruct.errors import InputError

PERCENTILES = (50, 90, 99)
_ROLE_KEYS = (("role", "content"), ("from", "value"))


def words(text: str) -> int:
    return len(text.split())


def percentile(sorted_values: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Lengths:
    """Word-count percentiles of one text field."""

    count: int
    p50: int
    p90: int
    p99: int
    max: int
    mean: float

    @classmethod
    def of(cls, texts: Iterable[str]) -> Lengths:
        values = sorted(words(text) for text in texts)
        p50, p90, p99 = (percentile(values, p) for p in PERCENTILES)
        mean = sum(values) / len(values) if values else 0.0
        return cls(len(values), p50, p90, p99, values[-1] if values else 0, round(mean, 2))


@dataclass
class TableStats:
    """Statistics of one table (a file, or one split of a saved dataset)."""

    name: str
    rows: int
    fields: list[str]
    missing: dict[str, int] = field(default_factory=dict)
    empty_inputs: int | None = None
    lengths: dict[str, Lengths] = field(default_factory=dict)

    @property
    def empty_input_share(self) -> float | None:
        if self.empty_inputs is None or not self.rows:
            return None
        return self.empty_inputs / self.rows

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "fields": self.fields,
            "missing": self.missing,
            "empty_inputs": self.empty_inputs,
            "empty_input_share": self.empty_input_share,
            "lengths": {key: vars(value) for key, value in self.lengths.items()},
        }


# -- reading ------------------------------------------------------------------------------


def load_tables(path: Path) -> dict[str, list[dict[str, Any]]]:
    """``{split name or "": rows}`` from any exported file; problems name ``file:line``."""
    if path.is_dir():
        return _load_saved_dataset(path)
    return {"": [row for _, row in iter_rows(path)]}


def _load_saved_dataset(path: Path) -> dict[str, list[dict[str, Any]]]:
    datasets = import_datasets()
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise InputError(
            f"not a dataset saved with save_to_disk ({str(exc).splitlines()[0]})", path=path
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        return {name: split.to_list() for name, split in loaded.items()}
    return {"": loaded.to_list()}


# -- measuring ----------------------------------------------------------------------------


def _turn_texts(value: Any) -> list[tuple[str, str]] | None:
    """``[(role, text), ...]`` if ``value`` is a list of chat turns, else None."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return None
    for role_key, text_key in _ROLE_KEYS:
        if role_key in value[0]:
            return [
                (str(turn.get(role_key)), turn.get(text_key) or "")
                for turn in value
                if isinstance(turn, dict) and isinstance(turn.get(text_key, ""), str)
            ]
    return None


def table_stats(rows: Sequence[dict[str, Any]], name: str = "") -> TableStats:
    """Rows, fields, empty inputs and word-length percentiles per text field."""
    fields: list[str] = []
    for row in rows:
        fields.extend(key for key in row if key not in fields)
    texts: dict[str, list[str]] = {}
    for key in fields:
        values = [row.get(key) for row in rows]
        if all(isinstance(v, str) or v is None for v in values):
            texts[key] = [v for v in values if isinstance(v, str)]
            continue
        for value in values:
            for role, text in _turn_texts(value) or ():
                texts.setdefault(f"{key}[{role}]", []).append(text)
    missing = {key: n for key in fields if (n := sum(key not in row for row in rows))}
    empty = None
    if "input" in fields:
        empty = sum(not str(row.get("input") or "").strip() for row in rows)
    return TableStats(
        name=name,
        rows=len(rows),
        fields=fields,
        missing=missing,
        empty_inputs=empty,
        lengths={key: Lengths.of(values) for key, values in texts.items()},
    )


def file_stats(path: Path) -> list[TableStats]:
    return [table_stats(rows, name) for name, rows in load_tables(path).items()]


def format_stats(path: Path, tables: Sequence[TableStats]) -> str:
    lines: list[str] = []
    for table in tables:
        title = f"{path}" + (f" [{table.name}]" if table.name else "")
        lines.append(f"{title}: {table.rows:,} rows")
        lines.append(f"  fields: {', '.join(table.fields) or '(none)'}")
        for key, count in table.missing.items():
            lines.append(f"  missing {key}: {count:,} rows")
        share = table.empty_input_share
        if share is not None:
            lines.append(f"  empty inputs: {table.empty_inputs:,} of {table.rows:,} ({share:.1%})")
        if table.lengths:
            width = max(len("words"), *(len(key) for key in table.lengths))
            lines.append(
                f"  {'words':<{width}}  {'p50':>6} {'p90':>6} {'p99':>6} {'max':>6} {'mean':>7}"
            )
            for key, value in table.lengths.items():
                lines.append(
                    f"  {key:<{width}}  {value.p50:>6} {value.p90:>6} {value.p99:>6} "
                    f"{value.max:>6} {value.mean:>7.1f}"
                )
    return "\n".join(lines)
