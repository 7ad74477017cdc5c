"""``export_run``: read a run, select and split its rows, render a layout, write a container."""

from __future__ import annotations

from pathlib import Path

from selfinstruct.errors import InputError
from selfinstruct.export.containers import CONTAINERS, check_out, resolve_container
from selfinstruct.export.layouts import LAYOUTS
from selfinstruct.export.options import ExportOptions, ExportResult
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


def export_rows(rows: list[Row], options: ExportOptions) -> ExportResult:
    """Split, render and write ``rows`` (nothing is written when ``options.out`` is None)."""
    if not rows:
        raise InputError("no examples to export")
    container = _check(options)
    render = LAYOUTS[options.layout]
    result = ExportResult(
        tables={
            name: [render(row, options) for row in part]
            for name, part in _parts(rows, options).items()
        },
        instructions=len({row.instruction_id for row in rows}),
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
