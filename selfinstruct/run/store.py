"""The open run directory and the resume state rebuilt from its files.

Everything needed to resume — kept instructions, which of them are finished, token totals, the
stage-1 request counter — is rebuilt from the files (:mod:`selfinstruct.run.files`), never kept
only in memory.

An instruction is *finished* once its examples are written, or once a ``no_valid_instances``
rejection records that none survived; unfinished ones are expanded again on resume.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfinstruct.errors import InputError
from selfinstruct.records import (
    Example,
    Instruction,
    Manifest,
    Rejection,
    RunResult,
    RunStatus,
    TeacherCall,
    Usage,
)
from selfinstruct.run.files import (
    EXAMPLES,
    INSTRUCTIONS,
    MANIFEST,
    REJECTED,
    REQUESTS,
    JsonlAppender,
    Row,
    cut_torn_tail,
    read_rows,
    torn_note,
    write_json_atomic,
)

#: the reason that marks an instruction finished without any example
NO_VALID_INSTANCES = "no_valid_instances"


@dataclass
class RunState:
    """What a run directory holds, rebuilt from its files."""

    instructions: list[Instruction] = field(default_factory=list)
    #: the kept instructions' texts, in order (stage 1's pool of machine demonstrations)
    instruction_texts: list[str] = field(default_factory=list)
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
    #: calls answered from the response cache, calls answered by a teacher, and per stage and
    #: per model the tokens the cached replies had cost (not spent again)
    cache_hits: int = 0
    teacher_answers: int = 0
    saved: dict[str, Usage] = field(default_factory=dict)
    saved_by_model: dict[str, Usage] = field(default_factory=dict)

    @property
    def pending(self) -> list[Instruction]:
        return [row for row in self.instructions if row.id not in self.finished]

    def result(
        self, out: Path, status: RunStatus, target: int, elapsed_s: float, stop_reason: str | None
    ) -> RunResult:
        """What a session ends with, for the caller (the CLI prints it)."""
        return RunResult(
            out=out,
            status=status,
            target=target,
            instructions_done=len(self.with_examples),
            examples=len(self.example_ids),
            rejected_by_reason=dict(self.rejected_by_reason),
            usage=dict(self.usage),
            elapsed_s=elapsed_s,
            stop_reason=stop_reason,
            notes=self.repaired,
        )

    def new_call_id(self, base: str) -> str:
        """A call id unique in the run: ``base``, else ``base~2``, ``base~3``... (a call made
        again after a resume, or one still in flight, keeps its own id)."""
        ident, attempt = base, 1
        while ident in self.call_ids:
            attempt += 1
            ident = f"{base}~{attempt}"
        self.call_ids.add(ident)
        return ident

    def record_call(self, call: TeacherCall) -> None:
        if call.id:
            self.call_ids.add(call.id)
        self.requests[call.stage] += 1
        self.usage[call.stage] = self.usage.get(call.stage, Usage()) + call.usage
        self.usage_by_model[call.model] = self.usage_by_model.get(call.model, Usage()) + call.usage
        if call.cached:
            self.cache_hits += 1
            saved = call.saved or Usage()
            self.saved[call.stage] = self.saved.get(call.stage, Usage()) + saved
            self.saved_by_model[call.model] = self.saved_by_model.get(call.model, Usage()) + saved
        elif call.error is None:
            self.teacher_answers += 1

    def totals(self) -> dict[str, int]:
        """Running totals for the progress line."""
        return {
            "examples": len(self.example_ids),
            "rejected": sum(self.rejected_by_reason.values()),
            "requests": sum(self.requests.values()),
            "tokens": self.total_tokens,
            "cached": self.cache_hits,
        }

    @property
    def work_usage(self) -> dict[str, Usage]:
        """Per stage, what the replies cost: spent, plus what the cached ones had cost."""
        return _plus(self.usage, self.saved)

    @property
    def work_usage_by_model(self) -> dict[str, Usage]:
        return _plus(self.usage_by_model, self.saved_by_model)

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
        self.instruction_texts.append(row.instruction)
        self.next_request = max(self.next_request, row.request + 1)


def _plus(a: dict[str, Usage], b: dict[str, Usage]) -> dict[str, Usage]:
    return {key: a.get(key, Usage()) + b.get(key, Usage()) for key in {**a, **b}}


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


def load_state(out: Path, repair: bool = True) -> RunState:
    """Rebuild a run's state from its files.

    With ``repair`` (a run being resumed) a torn last line is cut off, else (a reader) it is
    only left out; either way ``state.repaired`` says so, one note per file.
    """
    state = RunState()
    instructions = _read(out / INSTRUCTIONS, Instruction, repair, state)
    for row in instructions:
        state.record_instruction(row)
    state.record_examples(_read(out / EXAMPLES, Example, repair, state))
    state.record_rejections(_read(out / REJECTED, Rejection, repair, state))
    for call in _read(out / REQUESTS, TeacherCall, repair, state):
        state.record_call(call)
    return state


def _read(path: Path, model: type[Row], repair: bool, state: RunState) -> list[Row]:
    read = read_rows(path, model)
    if read.torn:
        if repair:
            cut_torn_tail(path, read)
        state.repaired.append(torn_note(path, read, cut=repair))
    return read.rows


class RunStore:
    """The open run directory: appends rows and keeps :class:`RunState` in step with the files."""

    def __init__(self, out: Path, state: RunState) -> None:
        self.out = out
        self.state = state
        self._instructions = JsonlAppender(out / INSTRUCTIONS)
        self._examples = JsonlAppender(out / EXAMPLES)
        self._rejected = JsonlAppender(out / REJECTED)
        self._requests = JsonlAppender(out / REQUESTS)
        self._calls_held = False  # requests rows held for one write at the end of this tick

    @classmethod
    def open(cls, out: Path) -> RunStore:
        make_output_dir(out)
        return cls(out, load_state(out))

    def add_instruction(self, row: Instruction) -> None:
        self.write_calls()
        self._instructions.append([row])
        self.state.record_instruction(row)

    def add_rejections(self, rows: Sequence[Rejection]) -> None:
        self.write_calls()
        self._rejected.append(rows)
        self.state.record_rejections(rows)

    def add_examples(self, rows: Sequence[Example]) -> None:
        self.write_calls()
        fresh = [row for row in rows if row.id not in self.state.example_ids]
        self._examples.append(fresh)
        self.state.record_examples(fresh)

    def add_call(self, call: TeacherCall) -> None:
        """A request's row is held and written with the others of this event-loop tick (one
        ``write`` for all, the run's most frequent row), and always before any later row of
        another file: the files on disk stay a prefix of the order rows were added in, so a
        kill leaves what an earlier kill would have left."""
        self._requests.hold([call])
        self.state.record_call(call)
        if not self._calls_held:
            self._calls_held = True
            try:
                asyncio.get_running_loop().call_soon(self.write_calls)
            except RuntimeError:  # no event loop: nothing to batch with
                self.write_calls()

    def write_calls(self) -> None:
        """Write the held requests rows now."""
        self._calls_held = False
        self._requests.flush()

    def write_manifest(self, manifest: Manifest) -> None:
        self.write_calls()
        write_json_atomic(self.out / MANIFEST, manifest.model_dump_json(indent=2) + "\n")

    async def checkpoint(self, manifest: Manifest) -> None:
        """Rewrite the manifest and make every row appended so far durable, in a thread: the
        fsyncs (tens of ms on a busy disk) never stall the event loop. Rows are flushed to the
        OS as they are appended (requests rows at the end of the tick), so a kill never
        depends on this."""
        self.write_calls()
        text = manifest.model_dump_json(indent=2) + "\n"
        await asyncio.to_thread(self._checkpoint, text)

    def _checkpoint(self, manifest: str) -> None:
        write_json_atomic(self.out / MANIFEST, manifest)
        for appender in (self._instructions, self._examples, self._rejected, self._requests):
            appender.fsync()

    def close(self) -> None:
        self.write_calls()
        for appender in (self._instructions, self._examples, self._rejected, self._requests):
            appender.close()
