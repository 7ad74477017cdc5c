"""Reading and writing the files of a run directory, with one policy for a torn last line.

    runs/NAME/
      instructions.jsonl  every instruction kept by stage 1 (Instruction)
      examples.jsonl      the dataset: one Example a line
      rejected.jsonl      everything dropped, with stage and reason (Rejection)
      requests.jsonl      one TeacherCall a line: tokens, latency, outcome
      manifest.json       config (no secrets), versions, fingerprint, counts, usage, timings

Rows are only ever appended, each batch with one ``write`` and a flush, so a process killed at
any instant leaves at most one torn last line. The policy, the same for every reader:

* the last line of a file is *torn* when it has no newline at its end (the write was cut,
  whatever it holds); a torn line is not a record: readers (status, estimate, export, report)
  leave it out and say so, and a resumed run cuts it off (with a note) before appending;
* any whole line that is not a valid row is an :class:`InputError` naming file, line and field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from selfinstruct.datafiles import atomic_path
from selfinstruct.errors import InputError, validation_problem
from selfinstruct.records import Manifest

INSTRUCTIONS = "instructions.jsonl"
EXAMPLES = "examples.jsonl"
REJECTED = "rejected.jsonl"
REQUESTS = "requests.jsonl"
MANIFEST = "manifest.json"

Row = TypeVar("Row", bound=BaseModel)


@dataclass
class RowsRead(Generic[Row]):
    """The valid rows of a run file; ``torn_at`` is the byte offset of a torn last line."""

    rows: list[Row] = field(default_factory=list)
    torn_at: int | None = None
    size: int = 0

    @property
    def torn(self) -> bool:
        return self.torn_at is not None

    @property
    def torn_bytes(self) -> int:
        return 0 if self.torn_at is None else self.size - self.torn_at


def read_rows(path: Path, model: type[Row]) -> RowsRead[Row]:
    """Every row of a run file, validated and streamed; a missing file has none.

    A torn last line (see the module doc) is left out and reported in ``torn_at``; any other
    bad line raises :class:`InputError`.
    """
    result: RowsRead[Row] = RowsRead()
    if not path.exists():
        return result
    if path.is_dir():
        raise InputError("is a directory, expected a JSONL file", path=path)
    offset = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n") and raw.strip():  # only the last line can lack one
                result.torn_at = offset
            elif raw.strip():
                result.rows.append(_parse(path, model, number, raw))
            offset += len(raw)
    result.size = offset
    return result


def _parse(path: Path, model: type[Row], number: int, raw: bytes) -> Row:
    """One line as a row, or InputError naming the file, line and field."""
    try:
        return model.model_validate_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("not valid UTF-8", path=path, line=number) from None
    except ValidationError as exc:
        where, problem = validation_problem(exc, show_input=False)
        raise InputError(
            f"corrupt {model.__name__} row: {problem}; fix or delete the line (a corrupt row "
            "is only skipped as an unterminated last line, left by a killed write)",
            path=path,
            line=number,
            field=where,
        ) from None


def cut_torn_tail(path: Path, read: RowsRead[BaseModel]) -> int:
    """Cut the torn last line ``read`` found in ``path`` before appending. Returns bytes cut."""
    if read.torn_at is None:
        return 0
    with path.open("rb+") as handle:
        handle.truncate(read.torn_at)
        handle.flush()
        os.fsync(handle.fileno())
    return read.torn_bytes


def torn_note(path: Path, read: RowsRead[BaseModel], *, cut: bool) -> str:
    """The one-line note for a torn last line, as the writer (cut) or a reader says it."""
    size = f"{read.torn_bytes} bytes"
    if cut:
        return f"{path}: cut an incomplete last line ({size})"
    return f"{path}: left out an incomplete last line ({size}); a resume cuts it"


class JsonlAppender:
    """Appends validated rows: one ``write`` per batch, flushed; ``sync`` makes them durable.
    Rows can also be ``hold``-ed, to go out with the next ``flush`` in the same single write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] = path.open("a", encoding="utf-8")
        self._fileno = self._handle.fileno()
        self._held: list[str] = []

    def append(self, rows: Sequence[BaseModel]) -> None:
        self.hold(rows)
        self.flush()

    def hold(self, rows: Sequence[BaseModel]) -> None:
        """Serialise ``rows`` now; they reach the file at the next :meth:`flush`."""
        self._held.extend(row.model_dump_json() for row in rows)

    def flush(self) -> None:
        """Every held row, in order, with one ``write`` (a kill cuts at most its last line)."""
        if self._held:
            self._handle.write("\n".join(self._held) + "\n")
            self._held.clear()
            self._handle.flush()

    def sync(self) -> None:
        self.flush()
        self.fsync()

    def fsync(self) -> None:
        """Make what :meth:`append` flushed durable (safe from another thread: no buffer)."""
        os.fsync(self._fileno)

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()


def write_json_atomic(path: Path, data: str) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over ``path``."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(out: Path) -> Manifest | None:
    """The run's manifest, or None when there is none yet."""
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable manifest: {str(exc).splitlines()[0]}", path=path) from None
