"""The run directory: append-only JSONL files, an atomic manifest, and resume state from disk.

    runs/NAME/
      instructions.jsonl  every instruction kept by stage 1 (Instruction)
      examples.jsonl      the dataset: one Example a line
      rejected.jsonl      everything dropped, with stage and reason (Rejection)
      requests.jsonl      one TeacherCall a line: tokens, latency, outcome
      manifest.json       config (no secrets), versions, fingerprint, counts, usage, timings

Rows are only ever appended, each batch with one ``write`` and a flush, so a process killed at
any instant leaves at most one torn last line; opening the run again cuts that line off (and
says so). Everything needed to resume — kept instructions, which of them are finished, token
totals, the stage-1 request counter — is rebuilt from these files, never kept only in memory.

An instruction is *finished* once its examples are written, or once a ``no_valid_instances``
rejection records that none survived; unfinished ones are expanded again on resume.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel, ValidationError

from selfinstruct.datafiles import atomic_path
from selfinstruct.errors import InputError
from selfinstruct.records import (
    Example,
    Instruction,
    Manifest,
    Rejection,
    TeacherCall,
    Usage,
)

INSTRUCTIONS = "instructions.jsonl"
EXAMPLES = "examples.jsonl"
REJECTED = "rejected.jsonl"
REQUESTS = "requests.jsonl"
MANIFEST = "manifest.json"

#: the reason that marks an instruction finished without any example
NO_VALID_INSTANCES = "no_valid_instances"

Row = TypeVar("Row", bound=BaseModel)


@dataclass
class RunState:
    """What a run directory holds, rebuilt from its files."""

    instructions: list[Instruction] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    with_examples: set[str] = field(default_factory=set)
    example_ids: set[str] = field(default_factory=set)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    usage: dict[str, Usage] = field(default_factory=dict)
    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    next_request: int = 0
    call_ids: set[str] = field(default_factory=set)
    repaired: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[Instruction]:
        return [row for row in self.instructions if row.id not in self.finished]

    def record_call(self, call: TeacherCall) -> None:
        if call.id:
            self.call_ids.add(call.id)
        self.requests[call.stage] += 1
        self.usage[call.stage] = self.usage.get(call.stage, Usage()) + call.usage
        self.usage_by_model[call.model] = self.usage_by_model.get(call.model, Usage()) + call.usage

    @property
    def total_tokens(self) -> int:
        return sum(usage.total_tokens for usage in self.usage.values())

    def record_rejections(self, rows: Iterable[Rejection]) -> None:
        for row in rows:
            self.rejected_by_reason[f"{row.stage}/{row.reason}"] += 1
            if row.request is not None and row.stage == "instructions":
                self.next_request = max(self.next_request, row.request + 1)
            if row.reason == NO_VALID_INSTANCES and row.instruction_id:
                self.finished.add(row.instruction_id)

    def record_examples(self, rows: Iterable[Example]) -> None:
        for row in rows:
            self.example_ids.add(row.id)
            self.with_examples.add(row.instruction_id)
            self.finished.add(row.instruction_id)

    def record_instruction(self, row: Instruction) -> None:
        self.instructions.append(row)
        self.next_request = max(self.next_request, row.request + 1)


def check_output_dir(out: Path) -> None:
    """Refuse a path that is a file, or where no directory can be made, before writing rows.

    Everything else (config, seeds, prompts) is checked before this, so a bad input never
    leaves even an empty run directory behind.
    """
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", path=out, field="--out")
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{ancestor} is a file, not a directory", path=out, field="--out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError("directory is not writable", path=ancestor, field="--out")


def make_output_dir(out: Path) -> None:
    """Create the run directory and prove it takes a file (root ignores permission bits)."""
    check_output_dir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write here: {exc.strerror}", path=out, field="--out") from None


def repair_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write interrupted by a kill). Returns bytes cut."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return 0
        # Walk back to the last newline in blocks.
        position = size
        keep = 0
        while position > 0:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            block = handle.read(step)
            index = block.rfind(b"\n")
            if index != -1:
                keep = position + index + 1
                break
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return size - keep


def read_rows(path: Path, model: type[Row]) -> list[Row]:
    """Every row of a JSONL file, validated. A bad row (not a torn tail) is an error."""
    if not path.exists():
        return []
    rows: list[Row] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(model.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or None
                raise InputError(
                    f"corrupt {model.__name__} row: {first['msg']}; fix or remove this line",
                    path=path,
                    line=number,
                    field=where,
                ) from None
    return rows


class JsonlAppender:
    """Appends validated rows: one ``write`` per batch, flushed; ``sync`` makes them durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] = path.open("a", encoding="utf-8")

    def append(self, rows: Sequence[BaseModel]) -> None:
        if not rows:
            return
        self._handle.write("".join(row.model_dump_json() + "\n" for row in rows))
        self._handle.flush()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

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
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable manifest: {str(exc).splitlines()[0]}", path=path) from None


def load_state(out: Path, repair: bool = True) -> RunState:
    """Rebuild a run's state from its files (repairing torn tails first when ``repair``)."""
    state = RunState()
    for name in (INSTRUCTIONS, EXAMPLES, REJECTED, REQUESTS):
        path = out / name
        if repair:
            cut = repair_torn_tail(path)
            if cut:
                state.repaired.append(f"{path}: cut an incomplete last line ({cut} bytes)")
    for row in read_rows(out / INSTRUCTIONS, Instruction):
        state.record_instruction(row)
    state.record_examples(read_rows(out / EXAMPLES, Example))
    state.record_rejections(read_rows(out / REJECTED, Rejection))
    for call in read_rows(out / REQUESTS, TeacherCall):
        state.record_call(call)
    return state


class RunStore:
    """The open run directory: appends rows and keeps :class:`RunState` in step with the files."""

    def __init__(self, out: Path, state: RunState) -> None:
        self.out = out
        self.state = state
        self._instructions = JsonlAppender(out / INSTRUCTIONS)
        self._examples = JsonlAppender(out / EXAMPLES)
        self._rejected = JsonlAppender(out / REJECTED)
        self._requests = JsonlAppender(out / REQUESTS)

    @classmethod
    def open(cls, out: Path) -> RunStore:
        make_output_dir(out)
        return cls(out, load_state(out))

    def add_instruction(self, row: Instruction) -> None:
        self._instructions.append([row])
        self.state.record_instruction(row)

    def add_rejections(self, rows: Sequence[Rejection]) -> None:
        self._rejected.append(rows)
        self.state.record_rejections(rows)

    def add_examples(self, rows: Sequence[Example]) -> None:
        fresh = [row for row in rows if row.id not in self.state.example_ids]
        self._examples.append(fresh)
        self.state.record_examples(fresh)

    def add_call(self, call: TeacherCall) -> None:
        self._requests.append([call])
        self.state.record_call(call)

    def write_manifest(self, manifest: Manifest) -> None:
        write_json_atomic(self.out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")

    def sync(self) -> None:
        for appender in (self._instructions, self._examples, self._rejected, self._requests):
            appender.sync()

    def close(self) -> None:
        for appender in (self._instructions, self._examples, self._rejected, self._requests):
            appender.close()
