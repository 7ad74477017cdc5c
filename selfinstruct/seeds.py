"""Read seed tasks into :class:`SeedTask` records, whatever common format they come in.

Accepted formats (detected from the content, not the file name):

* Self-Instruct JSONL: ``{"id", "name", "instruction", "instances": [{"input", "output"}],
  "is_classification"}`` one object a line (the original paper's ``seed_tasks.jsonl``);
* Alpaca JSON: a JSON list of ``{"instruction", "input", "output"}`` objects;
* plain JSONL of ``{"instruction", "input", "output"}`` objects (or Parquet with those columns).

Files are read by :func:`selfinstruct.datafiles.iter_rows`, as every dataset file is. Every
problem is reported as ``file:line: field: problem`` through :class:`InputError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from selfinstruct.datafiles import iter_rows
from selfinstruct.errors import InputError, validation_problem
from selfinstruct.records import Instance, SeedTask


def load_seeds(path: str | Path) -> list[SeedTask]:
    """Load and validate a seed file. Raises InputError on the first problem found."""
    path = Path(path)
    rows = list(iter_rows(path))
    tasks = [_to_seed_task(row, line, index, path) for index, (line, row) in enumerate(rows)]
    _check_unique_ids(tasks, [line for line, _ in rows], path)
    return tasks


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
        field, problem = validation_problem(exc)
        raise InputError(problem, path=path, line=line, field=field) from None
    if not task.instances:
        raise InputError("expected at least one instance", path=path, line=line, field="instances")
    if all(not instance.output.strip() for instance in task.instances):
        raise InputError("every output is empty", path=path, line=line, field="instances")
    return task


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



def seed_instances(tasks: list[SeedTask]) -> list[tuple[SeedTask, Instance]]:
    """Every (task, instance) pair, for few-shot demonstrations of stages 2 and 3."""
    return [(task, instance) for task in tasks for instance in task.instances]


def check_seed_count(seeds: list[SeedTask], shown: int, path: Path) -> None:
    """Each stage-1 request shows ``shown`` seed tasks: the seed set must have that many."""
    if len(seeds) < shown:
        raise InputError(
            f"the seed set has {len(seeds)} tasks but each request shows {shown} seed "
            "demonstrations; add seeds or lower num_seed_demos",
            path=path,
        )
