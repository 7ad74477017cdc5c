"""Read seed tasks into :class:`SeedTask` records, whatever common format they come in.

Accepted formats (detected from the content, not the file name):

* Self-Instruct JSONL: ``{"id", "name", "instruction", "instances": [{"input", "output"}],
  "is_classification"}`` one object a line (the original paper's ``seed_tasks.jsonl``);
* Alpaca JSON: a JSON list of ``{"instruction", "input", "output"}`` objects;
* plain JSONL of ``{"instruction", "input", "output"}`` objects.

Every problem is reported as ``file:line: field: problem`` through :class:`InputError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from selfinstruct.errors import InputError
from selfinstruct.records import Instance, SeedTask

_SNIPPET = 60


def load_seeds(path: str | Path) -> list[SeedTask]:
    """Load and validate a seed file. Raises InputError on the first problem found."""
    path = Path(path)
    text = _read_text(path)
    stripped = text.lstrip()
    if not stripped:
        raise InputError("empty file, expected seed tasks (JSONL or a JSON list)", path=path)
    if stripped.startswith("["):
        rows = list(_json_list_rows(text, path))
    else:
        rows = list(_jsonl_rows(text, path))
    if not rows:
        raise InputError("no seed tasks found", path=path)
    tasks = [_to_seed_task(row, line, index, path) for index, (line, row) in enumerate(rows)]
    _check_unique_ids(tasks, [line for line, _ in rows], path)
    return tasks


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a seed file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None
    try:
        # utf-8-sig: a byte-order mark (as Windows editors write) is accepted and dropped.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            path=path,
            line=line,
        ) from None


def _jsonl_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"invalid JSON ({exc.msg} at column {exc.colno}): {_snippet(line)}",
                path=path,
                line=number,
            ) from None
        if not isinstance(row, dict):
            raise InputError(
                f"expected a JSON object, got {type(row).__name__}", path=path, line=number
            )
        yield number, row


def _json_list_rows(text: str, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of objects", path=path)
    # Line numbers inside a JSON list are approximate: the line where each object starts.
    starts = _object_start_lines(text)
    for index, row in enumerate(data):
        line = starts[index] if index < len(starts) else None
        if not isinstance(row, dict):
            raise InputError(
                f"item {index}: expected a JSON object, got {type(row).__name__}",
                path=path,
                line=line,
            )
        yield line or index + 1, row


def _object_start_lines(text: str) -> list[int]:
    """Line numbers of the top-level objects of a JSON list (a tiny depth-tracking scan)."""
    lines, depth, line, in_string, escaped = [], 0, 1, False, False
    for char in text:
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            if depth == 1 and char == "{":
                lines.append(line)
            depth += 1
        elif char in "]}":
            depth -= 1
    return lines


def _to_seed_task(row: dict[str, Any], line: int, index: int, path: Path) -> SeedTask:
    """Normalise one row of any accepted format into a SeedTask."""
    if "instances" in row:
        data = row
    elif "instruction" in row:
        # Alpaca / plain: one instance from input + output.
        unknown = set(row) - {"id", "name", "instruction", "input", "output", "is_classification"}
        if unknown:
            raise InputError(
                f"unknown field(s): {', '.join(sorted(unknown))}", path=path, line=line
            )
        if "output" not in row:
            raise InputError("missing field", path=path, line=line, field="output")
        data = {
            "id": row.get("id", f"seed_{index}"),
            "name": row.get("name", ""),
            "instruction": row["instruction"],
            "instances": [{"input": row.get("input", ""), "output": row["output"]}],
            "is_classification": row.get("is_classification", False),
        }
    else:
        raise InputError("missing field", path=path, line=line, field="instruction")
    if "id" not in data:
        data = {**data, "id": f"seed_{index}"}
    try:
        task = SeedTask.model_validate(data, strict=True)
    except ValidationError as exc:
        raise _validation_error(exc, path, line) from None
    if not task.instances:
        raise InputError("expected at least one instance", path=path, line=line, field="instances")
    if all(not instance.output.strip() for instance in task.instances):
        raise InputError("every output is empty", path=path, line=line, field="instances")
    return task


def _validation_error(exc: ValidationError, path: Path, line: int) -> InputError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    kind = first["type"]
    if kind == "missing":
        problem = "missing field"
    elif kind == "extra_forbidden":
        problem = "unknown field"
    else:
        problem = f"{first['msg']} (got {_snippet(repr(first.get('input')))})"
    return InputError(problem, path=path, line=line, field=field)


def _check_unique_ids(tasks: list[SeedTask], lines: list[int], path: Path) -> None:
    seen: dict[str, int] = {}
    for task, line in zip(tasks, lines, strict=True):
        if task.id in seen:
            raise InputError(
                f"duplicate id {task.id!r} (first at line {seen[task.id]})",
                path=path,
                line=line,
                field="id",
            )
        seen[task.id] = line


def _snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def seed_instances(tasks: list[SeedTask]) -> list[tuple[SeedTask, Instance]]:
    """Every (task, instance) pair, for few-shot demonstrations of stages 2 and 3."""
    return [(task, instance) for task in tasks for instance in task.instances]
