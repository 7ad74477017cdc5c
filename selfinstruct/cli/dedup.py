"""``selfinstruct dedup``: the click command over :func:`selfinstruct.dedup.dedup_file`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from selfinstruct.dedup import NEAREST, SCORE, DedupResult, dedup_file
from selfinstruct.errors import InputError
from selfinstruct.filters.rouge import DEFAULT_THRESHOLD

_FILE = click.Path(path_type=Path, dir_okay=False)


@click.command("dedup")
@click.argument("input_path", metavar="INPUT", type=_FILE)
@click.option(
    "--field", default="instruction", show_default=True, help="The text field to compare."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Drop a row whose ROUGE-L F against a kept row is above this.",
)
@click.option(
    "--out",
    "out_path",
    type=_FILE,
    required=True,
    help="Kept rows: JSON lines, or a JSON list if the name ends with .json.",
)
@click.option(
    "--rejected",
    "rejected_path",
    type=_FILE,
    help=f"Also write the dropped rows, each with {NEAREST} and {SCORE}.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def dedup_command(
    input_path: Path,
    field: str,
    threshold: float,
    out_path: Path,
    rejected_path: Path | None,
    quiet: bool,
) -> None:
    """Drop near-duplicate rows of INPUT (JSON lines, a JSON list or Parquet).

    A row is kept iff its FIELD's ROUGE-L F against every row kept before it is at most
    the threshold (the Self-Instruct rule; exactly rouge-score's decisions). Rows keep all
    their fields.

    \b
    selfinstruct dedup data.jsonl --out deduped.jsonl --rejected dropped.jsonl
    """
    bar = _ProgressBar() if not quiet and sys.stderr.isatty() else None
    try:
        result = dedup_file(
            input_path,
            out_path=out_path,
            field=field,
            threshold=threshold,
            rejected_path=rejected_path,
            progress=bar.show if bar is not None else None,
        )
    except InputError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    finally:
        if bar is not None:
            bar.close()
    if not quiet:
        click.echo(summary(result))


def summary(result: DedupResult) -> str:
    """Counts, time and outputs in a few lines."""
    lines = [
        f"{result.rows:,} rows: kept {result.kept:,}, rejected {result.rejected:,} "
        f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)",
        f"kept rows: {result.out_path}",
    ]
    if result.rejected_path is not None:
        lines.append(f"rejected rows: {result.rejected_path}")
    return "\n".join(lines)


class _ProgressBar:
    """A row counter on stderr (the total is unknown while streaming)."""

    def __init__(self) -> None:
        self._bar = tqdm(desc="dedup", unit=" rows", file=sys.stderr, dynamic_ncols=True)

    def show(self, rows: int, kept: int) -> None:
        self._bar.set_postfix(kept=kept, refresh=False)
        self._bar.update(rows - self._bar.n)

    def close(self) -> None:
        self._bar.close()
