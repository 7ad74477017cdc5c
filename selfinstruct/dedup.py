"""``selfinstruct dedup``: drop the rows of a dataset file that are near-duplicates of an
earlier kept row, by the Self-Instruct rule (ROUGE-L F of one text field > threshold).

Rows are read in file order (JSON lines, a JSON list or Parquet) and a row is kept iff
its field's maximum ROUGE-L F against the rows kept before it is <= the threshold: the
same greedy pass as Self-Instruct and Alpaca, with rouge-score's exact decisions, made fast
by :class:`~selfinstruct.filters.rouge_index.RougeIndex`. Kept rows are written whole (every
field); rejected rows can be written too, each with ``_nearest`` (the kept text it is
closest to) and ``_rouge_l`` (that F).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfinstruct.datafiles import RowWriter, iter_rows, write_rows
from selfinstruct.errors import InputError
from selfinstruct.filters.rouge import DEFAULT_THRESHOLD, RougeIndex

NEAREST = "_nearest"
SCORE = "_rouge_l"
PROGRESS_EVERY = 1000


@dataclass(frozen=True)
class DedupResult:
    """What a dedup run did: row counts, wall time and where the rows went."""

    rows: int
    kept: int
    rejected: int
    seconds: float
    out_path: Path
    rejected_path: Path | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def field_text(row: dict[str, Any], field: str, path: str | Path, line: int) -> str:
    """The text to compare, or an InputError naming the file, line and field."""
    if field not in row:
        raise InputError("missing (expected a string)", path=path, line=line, field=field)
    value = row[field]
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise InputError(f"expected a string, got {kind}", path=path, line=line, field=field)
    return value


def dedup_file(
    input_path: str | Path,
    *,
    out_path: str | Path,
    field: str = "instruction",
    threshold: float = DEFAULT_THRESHOLD,
    rejected_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DedupResult:
    """Keep each row iff its ``field`` has max ROUGE-L F <= ``threshold`` against the rows
    kept before it; write kept rows to ``out_path`` (JSON lines, or a JSON list if the name
    ends with ``.json``) and, if given, rejected rows to ``rejected_path``.

    Outputs appear only when the whole input was read without error. ``progress`` is called
    with (rows read, rows kept) every 1,000 rows. Raises InputError for bad input.
    """
    input_path, out_path = Path(input_path), Path(out_path)
    rejected_path = Path(rejected_path) if rejected_path is not None else None
    _check_paths(input_path, out_path, rejected_path)
    index = _new_index(threshold)
    rows = rejected = 0
    start = time.perf_counter()
    with ExitStack() as stack:
        kept_out = stack.enter_context(write_rows(out_path))
        rejected_out = stack.enter_context(write_rows(rejected_path)) if rejected_path else None
        for line, row in iter_rows(input_path):
            text = field_text(row, field, input_path, line)
            if not _keep(index, text, row, kept_out, rejected_out):
                rejected += 1
            rows += 1
            if progress is not None and rows % PROGRESS_EVERY == 0:
                progress(rows, rows - rejected)
    seconds = time.perf_counter() - start
    if progress is not None:
        progress(rows, rows - rejected)
    return DedupResult(rows, rows - rejected, rejected, seconds, out_path, rejected_path)


def _keep(
    index: RougeIndex,
    text: str,
    row: dict[str, Any],
    kept_out: RowWriter,
    rejected_out: RowWriter | None,
) -> bool:
    found = index.find_or_add(text)
    if found is None:
        kept_out.write(row)
        return True
    if rejected_out is not None:
        score, nearest = found
        rejected_out.write({**row, NEAREST: index.text(nearest), SCORE: score})
    return False


def _new_index(threshold: float) -> RougeIndex:
    try:
        return RougeIndex(threshold)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), field="threshold") from None


def _check_paths(input_path: Path, out_path: Path, rejected_path: Path | None) -> None:
    if rejected_path is not None and rejected_path.resolve() == out_path.resolve():
        raise InputError("the rejected rows need a file of their own", path=rejected_path)
    for path in (out_path, rejected_path):
        if path is not None and path.resolve() == input_path.resolve():
            raise InputError("would overwrite the input; choose another output", path=path)
