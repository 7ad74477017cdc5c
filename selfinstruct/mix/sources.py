"""The sources of a mixture: run directories and dataset files, read into export rows.

A source is ``[NAME=]PATH``: a run directory (its ``examples.jsonl``), a dataset file (JSON
lines, a JSON list or Parquet, read by :func:`selfinstruct.datafiles.iter_rows`) or a
directory written by ``Dataset.save_to_disk`` (every split, in order). NAME defaults to the
file's stem or the directory's name.

A dataset row is read in any export layout (:mod:`selfinstruct.export.layouts`): ``alpaca``
(``instruction``, ``input``, ``output``; Dolly's ``context``/``response`` too), ``messages``,
``sharegpt`` (the first user turn is the instruction, the assistant's answer the output)
or ``prompt-completion``. ``is_classification`` is read when a row has it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from selfinstruct.datafiles import iter_rows
from selfinstruct.errors import InputError
from selfinstruct.export.rows import Row, collect_rows
from selfinstruct.report.stats import load_tables
from selfinstruct.run.files import EXAMPLES

SourceKind = Literal["run", "file", "hf"]
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_USER_ROLES = ("user", "human")
_ASSISTANT_ROLES = ("assistant", "gpt")


@dataclass(frozen=True)
class SourceSpec:
    """A source as named on the command line."""

    name: str
    path: Path


@dataclass
class Source:
    """A source's rows (``Row.source`` is its name) and each row's classification flag
    (None: the dataset does not say)."""

    name: str
    path: Path
    kind: SourceKind
    rows: list[Row]
    classification: list[bool | None]


def parse_source(text: str) -> SourceSpec:
    """``NAME=PATH`` or ``PATH`` (named after the file's stem or the directory)."""
    name, sep, path = text.partition("=")
    if sep and _NAME.match(name) and path:
        return SourceSpec(name, Path(path))
    if sep and "/" not in name and not Path(text).exists():
        raise InputError(f"expected NAME=PATH with NAME of letters, digits, _ . -, got {text!r}")
    target = Path(text)
    return SourceSpec(target.stem if target.suffix else target.name, target)


def load_source(spec: SourceSpec) -> Source:
    """Read one source; problems name the file and line."""
    path = spec.path
    if path.is_dir() and (path / EXAMPLES).exists():
        rows, _torn = collect_rows(path)
        named = [_renamed(row, spec.name) for row in rows]
        return Source(spec.name, path, "run", named, [row.is_classification for row in rows])
    if path.is_dir():
        tables = load_tables(path)
        items = [row for table in tables.values() for row in table]
        return _from_dicts(spec, "hf", enumerate(items, start=1))
    return _from_dicts(spec, "file", iter_rows(path))


def _renamed(row: Row, name: str) -> Row:
    """``row`` with its ids in the source's namespace (judge scores and candidates kept)."""
    return replace(
        row,
        id=f"{name}:{row.id}",
        instruction_id=f"{name}:{row.instruction_id}",
        group=f"{name}:{row.group}" if row.group else "",
        source=name,
    )


def _from_dicts(
    spec: SourceSpec, kind: SourceKind, items: Iterator[tuple[int, dict[str, Any]]]
) -> Source:
    rows, flags = [], []
    for index, (line, data) in enumerate(items):
        instruction, input_text, output = read_layout(data, spec.path, line)
        flag = data.get("is_classification")
        flag = flag if isinstance(flag, bool) else None
        digest = hashlib.sha1(instruction.encode("utf-8")).hexdigest()[:12]
        rows.append(
            Row(
                id=f"{spec.name}:{data.get('id', index)}",
                instruction_id=f"{spec.name}:{data.get('instruction_id') or digest}",
                instruction=instruction,
                input=input_text,
                output=output,
                is_classification=bool(flag),
                source=spec.name,
            )
        )
        flags.append(flag)
    return Source(spec.name, spec.path, kind, rows, flags)


def read_layout(data: dict[str, Any], path: Path, line: int) -> tuple[str, str, str]:
    """``(instruction, input, output)`` of a row in any export layout."""
    if "messages" in data:
        return _turns(data, "messages", ("role", "content"), path, line)
    if "conversations" in data:
        return _turns(data, "conversations", ("from", "value"), path, line)
    if "instruction" in data:
        output_field = "output" if "output" in data else "response"
        input_field = "input" if "input" in data else "context"
        return (
            _text(data, "instruction", path, line),
            _text(data, input_field, path, line, missing_ok=True),
            _text(data, output_field, path, line),
        )
    if "prompt" in data and "completion" in data:
        prompt = _text(data, "prompt", path, line).strip()
        return prompt, "", _text(data, "completion", path, line).strip()
    raise InputError(
        "expected instruction/output, messages, conversations or prompt/completion fields",
        path=path,
        line=line,
    )


def _text(
    data: dict[str, Any], field: str, path: Path, line: int, *, missing_ok: bool = False
) -> str:
    value = data.get(field)
    if value is None and missing_ok:
        return ""
    if not isinstance(value, str):
        got = "missing" if field not in data else type(value).__name__
        raise InputError(f"expected a string, got {got}", path=path, line=line, field=field)
    return value


def _turns(
    data: dict[str, Any], field: str, keys: tuple[str, str], path: Path, line: int
) -> tuple[str, str, str]:
    """The first user turn and the assistant turn after it."""
    role_key, text_key = keys
    turns = data[field]
    if not isinstance(turns, list):
        raise InputError("expected a list of turns", path=path, line=line, field=field)
    roles = [(str(t.get(role_key)), t.get(text_key)) for t in turns if isinstance(t, dict)]
    user = next((i for i, (role, _) in enumerate(roles) if role in _USER_ROLES), None)
    answer = next(
        (i for i, (role, _) in enumerate(roles) if role in _ASSISTANT_ROLES and i > (user or 0)),
        None,
    )
    if user is None or answer is None:
        raise InputError("expected a user turn and an answer after it", path=path, line=line,
                         field=field)  # fmt: skip
    prompt, reply = roles[user][1], roles[answer][1]
    if not isinstance(prompt, str) or not isinstance(reply, str):
        raise InputError(f"expected string {text_key}s", path=path, line=line, field=field)
    return prompt, "", reply
