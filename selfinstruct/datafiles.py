"""Dataset files read row by row, and written atomically.

Reading accepts JSON lines (one object a line; blank lines skipped), a JSON list of objects
(detected by a leading ``[``, whatever the file name) and Parquet (``.parquet``, needs
pyarrow). Rows come with the line they start on (the row number for Parquet) so that every
problem is reported as ``file:line: field: problem`` through :class:`InputError`.

Writing goes to a temporary file beside the target, renamed over it only when the whole
output is written, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from selfinstruct.errors import InputError

HF_HINT = "pip install 'selfinstruct[hf]'"
_SNIPPET = 60
_PARQUET_BATCH = 4096


def iter_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line, row)`` for every row of a dataset file, streamed (a JSON list is parsed in
    memory, item by item). Raises InputError for a missing, empty or malformed file."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, expected a dataset file", path=path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if not os.access(path, os.R_OK):
        raise InputError("permission denied", path=path)
    if path.suffix.lower() == ".parquet":
        rows = _parquet_rows(path)
    elif _first_char(path) == "[":
        rows = _json_list_rows(path)
    else:
        rows = _json_lines_rows(path)
    empty = True
    for line, row in rows:
        empty = False
        yield line, row
    if empty:
        raise InputError(
            "empty file, expected rows (JSON lines, a JSON list or Parquet)", path=path
        )


def _first_char(path: Path) -> str:
    """The first non-blank character (after a byte-order mark), '' for a blank file."""
    with path.open("rb") as file:
        while chunk := file.read(4096):
            text = chunk.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
            if text:
                return text[0]
    return ""


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
            path=path,
            line=line,
        ) from None


def _json_lines_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            text = _decode(raw, path, number)
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"invalid JSON ({exc.msg} at column {exc.colno}): {_snippet(text)}",
                    path=path,
                    line=number,
                ) from None
            yield number, _expect_object(row, path, number)


def _json_list_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """A JSON list, item by item, so that a bad item is reported with its line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problem = f"not valid UTF-8 (byte offset {exc.start})"
        raise InputError(problem, path=path, line=line) from None
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0) + 1  # past "["
    line, counted = 1, 0
    while True:
        position = _skip_space(text, position)
        line += text.count("\n", counted, position)
        counted = position
        if text.startswith("]", position):
            break
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
        yield line, _expect_object(item, path, line)
        position = _skip_space(text, position)
        if text.startswith(",", position):
            position += 1
        elif not text.startswith("]", position):
            line += text.count("\n", counted, position)
            raise InputError("invalid JSON list (expected ',' or ']')", path=path, line=line)
    rest = _skip_space(text, position + 1)
    if rest < len(text):
        line = text.count("\n", 0, rest) + 1
        raise InputError("unexpected text after the JSON list", path=path, line=line)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    pa, pq = import_pyarrow()
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=_PARQUET_BATCH)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({exc})", path=path) from None


def _expect_object(row: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InputError(f"expected a JSON object, got {type(row).__name__}", path=path, line=line)
    return row


def _snippet(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


class RowWriter:
    """Writes rows as JSON lines, or as a JSON list; see :func:`write_rows`."""

    def __init__(self, file: IO[str], *, as_list: bool) -> None:
        self._file = file
        self.as_list = as_list
        self.count = 0
        if as_list:
            file.write("[")

    def write(self, row: dict[str, Any]) -> None:
        text = json.dumps(row, ensure_ascii=False, default=str)
        if self.as_list:
            self._file.write(("\n" if self.count == 0 else ",\n") + text)
        else:
            self._file.write(text + "\n")
        self.count += 1

    def finish(self) -> None:
        if self.as_list:
            self._file.write("\n]\n" if self.count else "]\n")


@contextmanager
def write_rows(path: str | Path) -> Iterator[RowWriter]:
    """A :class:`RowWriter` for ``path``: JSON lines, or a JSON list if the name ends with
    ``.json``. Rows go to a temporary file beside ``path`` that replaces it only when the
    block ends cleanly. Values JSON cannot hold (dates, decimals, bytes from Parquet) are
    written as strings."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, expected a file to write", path=path)
    with ExitStack() as stack:
        try:
            temp = stack.enter_context(atomic_path(path))
            file = stack.enter_context(temp.open("w", encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot write ({exc.strerror})", path=path) from None
        writer = RowWriter(file, as_list=path.suffix.lower() == ".json")
        yield writer
        writer.finish()


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name next to ``path`` to write to; renamed over ``path`` on success,
    removed on failure. The file gets the usual permissions (umask), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def import_pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"Parquet needs the 'pyarrow' package: {HF_HINT}") from None
    return pa, pq


def import_datasets() -> Any:
    """The ``datasets`` package, or an InputError saying how to install it."""
    try:
        import datasets
    except ImportError:
        raise InputError(f"this needs the 'datasets' package: {HF_HINT}") from None
    return datasets
