"""``export_run``: read a run, select and split its rows, render a layout, write a container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfinstruct.errors import InputError
from selfinstruct.export.containers import CONTAINERS, check_out, resolve_container
from selfinstruct.export.layouts import EXAMPLE_LAYOUTS, LAYOUTS, with_judge_score
from selfinstruct.export.options import ExportOptions, ExportResult
from selfinstruct.export.preference import SkipRow
from selfinstruct.export.rows import Row, collect_rows, shuffled, split_rows


def _check(options: ExportOptions) -> str | None:
    """The container to write (None: none), after checking the layout and the out path."""
    if options.layout not in LAYOUTS:
        raise InputError(f"unknown layout {options.layout!r} (one of {', '.join(LAYOUTS)})")
    container = resolve_container(options.to, options.out)
    check_out(options.out, container, list(options.split or ()))
    return container


def _parts(rows: list[Row], options: ExportOptions) -> dict[str, list[Row]]:
    parts = split_rows(rows, options.split, options.seed) if options.split else {"": rows}
    if options.shuffle:
        parts = {name: shuffled(part, options.seed, name) for name, part in parts.items()}
    return parts


def _render(
    rows: list[Row], options: ExportOptions, skipped: dict[str, int], scored: bool
) -> list[dict[str, Any]]:
    """The rows in the layout (plus ``judge_score`` if ``scored``); skipped ones are counted
    in ``skipped`` by reason."""
    render = LAYOUTS[options.layout]
    table = []
    for row in rows:
        try:
            rendered = render(row, options)
        except SkipRow as skip:
            skipped[str(skip)] = skipped.get(str(skip), 0) + 1
            continue
        table.append(with_judge_score(rendered, row) if scored else rendered)
    return table


def export_rows(rows: list[Row], options: ExportOptions) -> ExportResult:
    """Split, render and write ``rows`` (nothing is written when ``options.out`` is None)."""
    if not rows:
        raise InputError("no examples to export")
    container = _check(options)
    result = ExportResult(instructions=len({row.instruction_id for row in rows}))
    scored = options.layout in EXAMPLE_LAYOUTS and any(r.judge_score is not None for r in rows)
    result.tables = {
        name: _render(part, options, result.skipped, scored)
        for name, part in _parts(rows, options).items()
    }
    if not any(result.tables.values()):
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in result.skipped.items())
        raise InputError(
            f"no example can be a {options.layout} row ({reasons}): it needs several sampled "
            "outputs rated by the judge (stages.outputs.samples >= 2, stages.judge.enabled)"
        )
    if options.out is not None and container is not None:
        result.paths = CONTAINERS[container](options.out, result.tables)
    return result


def export_run(run_dir: Path, options: ExportOptions) -> ExportResult:
    """Read, validate, select, split, render and write a run's examples."""
    _check(options)  # refuse bad options before reading anything
    rows, torn = collect_rows(
        run_dir,
        include_seeds=options.include_seeds,
        max_per_instruction=options.max_per_instruction,
    )
    result = export_rows(rows, options)
    result.skipped_tail = torn
    return result
