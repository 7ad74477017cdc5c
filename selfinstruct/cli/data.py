"""``selfinstruct export``, ``report`` and ``stats``: thin click commands over the library.

They are plain :class:`click.Command` objects; the main group registers them with
``cli.add_command``. Errors are :class:`~selfinstruct.errors.SelfInstructError`, which the
group turns into one line and an exit code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from selfinstruct.datafiles import import_datasets
from selfinstruct.errors import InputError
from selfinstruct.export import (
    CONTAINERS,
    LAYOUTS,
    ExportOptions,
    build_dataset,
    export_run,
    parse_split,
    write_text_atomic,
)
from selfinstruct.export.containers import resolve_container
from selfinstruct.export.hub import dataset_card, push_to_hub
from selfinstruct.export.layouts import CHAT_LAYOUTS

# The deprecated --format: a layout (file container from the --out suffix) or a container.
FORMATS = (*LAYOUTS, "hf", "parquet")


def layout_and_container(fmt: str, out: Path | None, layout: str | None) -> tuple[str, str | None]:
    """What ``--format FMT`` means as ``(--layout, --to)``, refusing what it never allowed."""
    if fmt not in LAYOUTS:
        return layout or "alpaca", fmt
    if layout is not None and layout != fmt:
        raise InputError(
            f"--layout is for --format hf or parquet; --format {fmt} is already a layout "
            "(better: --layout LAYOUT --to CONTAINER)"
        )
    if out is None:
        return fmt, None
    if out.suffix not in (".json", ".jsonl"):
        raise InputError(
            "must end in .json (a JSON list) or .jsonl (one object a line)", path=out, field="--out"
        )
    return fmt, out.suffix[1:]


def _check_export_options(options: ExportOptions, repo_id: str | None, private: bool) -> None:
    layout = options.layout
    if options.out is None and repo_id is None:
        raise InputError("give --out PATH (or --push-to-hub REPO_ID)", field="--out")
    if options.system is not None and layout not in CHAT_LAYOUTS:
        raise InputError(f"--system needs the messages or sharegpt layout, not {layout}")
    if (options.paper_templates or options.eos) and layout != "prompt-completion":
        raise InputError(
            f"--paper-templates and --eos need the prompt-completion layout, not {layout}"
        )
    if private and repo_id is None:
        raise InputError("--private needs --push-to-hub")
    if options.to == "hf" or repo_id is not None:
        import_datasets()
    if repo_id is not None and not os.environ.get("HF_TOKEN"):
        raise InputError("--push-to-hub needs a Hugging Face token in the HF_TOKEN variable")


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="File (.json: a JSON list, .jsonl: one object a line, .parquet), or a directory "
    "for --to hf.",
)
@click.option(
    "--layout",
    type=click.Choice(list(LAYOUTS)),
    help="Row layout.  [default: alpaca]",
)
@click.option(
    "--to",
    type=click.Choice(list(CONTAINERS)),
    help="Container: json, jsonl, parquet, or hf (a save_to_disk directory).  "
    "[default: from the --out suffix]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Deprecated: a layout (the --out suffix picks json/jsonl) or hf/parquet.",
)
@click.option("--system", help="System prompt as the first turn (messages, sharegpt).")
@click.option(
    "--split",
    "split_spec",
    metavar="NAME=FRACTION,...",
    help="Split by instruction, e.g. train=0.95,test=0.05 (files get a -NAME suffix).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="For --split, --shuffle.")
@click.option("--shuffle", is_flag=True, help="Shuffle the rows (seeded).")
@click.option(
    "--max-per-instruction",
    type=click.IntRange(min=1),
    metavar="K",
    help="Keep the first K examples of each instruction.",
)
@click.option("--include-seeds", is_flag=True, help="Add the run's seed tasks as rows.")
@click.option(
    "--paper-templates",
    is_flag=True,
    help="prompt-completion: the paper's randomly chosen templates instead of its fixed one.",
)
@click.option(
    "--eos", default="", metavar="TEXT", help="prompt-completion: append to each completion."
)
@click.option("--push-to-hub", "repo_id", metavar="REPO_ID", help="Push to the HF Hub (HF_TOKEN).")
@click.option("--private", is_flag=True, help="Make the pushed dataset private.")
@click.option(
    "--license", "license_", default="other", show_default=True, help="License in the card."
)
def export(
    run_dir: Path,
    out: Path | None,
    layout: str | None,
    to: str | None,
    fmt: str | None,
    system: str | None,
    split_spec: str | None,
    seed: int,
    shuffle: bool,
    max_per_instruction: int | None,
    include_seeds: bool,
    paper_templates: bool,
    eos: str,
    repo_id: str | None,
    private: bool,
    license_: str,
) -> None:
    """Export a run's examples for fine-tuning: a row --layout written --to a container.

    \b
    selfinstruct export runs/demo --layout messages --out data.jsonl
    selfinstruct export runs/demo --out data.json --split train=0.9,test=0.1
    selfinstruct export runs/demo --to hf --out data/ --push-to-hub me/my-dataset
    """
    if fmt is not None:
        if to is not None:
            raise InputError("--format is deprecated and cannot be combined with --to")
        layout, to = layout_and_container(fmt, out, layout)
        click.echo(
            f"note: --format is deprecated; use --layout {layout}" + (f" --to {to}" if to else ""),
            err=True,
        )
    options = ExportOptions(
        layout=layout or "alpaca",
        to=resolve_container(to, out),
        out=out,
        system=system,
        split=parse_split(split_spec) if split_spec else None,
        seed=seed,
        shuffle=shuffle,
        max_per_instruction=max_per_instruction,
        include_seeds=include_seeds,
        paper_templates=paper_templates,
        eos=eos,
    )
    _check_export_options(options, repo_id, private)
    result = export_run(run_dir, options)
    if result.skipped_tail:
        click.echo("note: skipped an incomplete last line of examples.jsonl", err=True)
    if result.skipped:
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in result.skipped.items())
        total = sum(result.skipped.values())
        click.echo(f"note: skipped {total:,} examples with no {options.layout} row: {reasons}")
    saved = options.to == "hf" and out is not None
    card = None
    if saved or repo_id is not None:
        card = dataset_card(run_dir, result, options, repo_id=repo_id, license=license_)
    if saved and card is not None:
        write_text_atomic(out / "README.md", card)
    if saved:
        splits = ", ".join(f"{name} {count:,}" for name, count in result.rows.items() if name)
        total = sum(result.rows.values())
        click.echo(f"wrote {total:,} rows to {out}" + (f" ({splits})" if splits else ""))
    else:
        for path, (name, count) in zip(result.paths, result.rows.items(), strict=False):
            click.echo(f"wrote {count:,} rows" + (f" [{name}]" if name else "") + f" to {path}")
    if repo_id is not None and card is not None:
        url = push_to_hub(
            build_dataset(result.tables),
            card,
            repo_id,
            private=private,
            token=os.environ["HF_TOKEN"],
        )
        click.echo(f"pushed {sum(result.rows.values()):,} rows to {url}")


@click.command("stats")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def stats(file: Path, as_json: bool) -> None:
    """Rows, fields, empty inputs and length percentiles (words) of an exported file.

    \b
    selfinstruct stats data.jsonl
    """
    from selfinstruct.report.stats import file_stats, format_stats

    tables = file_stats(file)
    if as_json:
        click.echo(json.dumps([table.to_json() for table in tables], indent=2))
    else:
        click.echo(format_stats(file, tables))


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--prices",
    type=click.Path(path_type=Path),
    help="Price table (YAML/TOML: models: {NAME: {input: USD, output: USD}} per 1M tokens), "
    "laid over the shipped one.",
)
@click.option("--samples", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="For the samples.")
def report(run_dir: Path, prices: Path | None, samples: int, seed: int) -> None:
    """Write RUN_DIR/report/report.html (charts, counts, cost, samples) and print a summary.

    \b
    selfinstruct report runs/demo
    """
    from selfinstruct.report import summary_text, write_report

    result, html_path = write_report(run_dir, prices=prices, samples=samples, seed=seed)
    click.echo(summary_text(result, html_path))
