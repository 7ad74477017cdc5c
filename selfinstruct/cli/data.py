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

from selfinstruct.errors import InputError
from selfinstruct.export import (
    FORMATS,
    LAYOUTS,
    ExportOptions,
    build_dataset,
    export_run,
    import_datasets,
    parse_split,
    write_text_atomic,
)
from selfinstruct.hub import dataset_card, push_to_hub


def _check_export_options(options: ExportOptions, repo_id: str | None, private: bool) -> None:
    layout = options.row_layout
    if options.out is None and repo_id is None:
        raise InputError("give --out PATH (or --push-to-hub REPO_ID)", field="--out")
    if options.system is not None and layout not in ("messages", "sharegpt"):
        raise InputError(f"--system needs the messages or sharegpt layout, not {layout}")
    if (options.paper_templates or options.eos) and layout != "prompt-completion":
        raise InputError(
            f"--paper-templates and --eos need the prompt-completion layout, not {layout}"
        )
    if options.format not in ("hf", "parquet") and options.layout != "alpaca":
        raise InputError("--layout is for --format hf or parquet; use --format LAYOUT instead")
    if private and repo_id is None:
        raise InputError("--private needs --push-to-hub")
    if options.format == "hf" or repo_id is not None:
        import_datasets()
    if repo_id is not None and not os.environ.get("HF_TOKEN"):
        raise InputError("--push-to-hub needs a Hugging Face token in the HF_TOKEN variable")


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="File (.json: a JSON list, .jsonl: one object a line, or .parquet), or a directory "
    "for --format hf.",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="alpaca",
    show_default=True,
    help="Row layout for --format hf / parquet.",
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
    fmt: str,
    out: Path | None,
    layout: str,
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
    """Export a run's examples for fine-tuning.

    \b
    selfinstruct export runs/demo --format messages --out data.jsonl
    selfinstruct export runs/demo --format alpaca --out data.json --split train=0.9,test=0.1
    selfinstruct export runs/demo --format hf --out data/ --push-to-hub me/my-dataset
    """
    options = ExportOptions(
        format=fmt,
        out=out,
        layout=layout,
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
    card = None
    if fmt == "hf" or repo_id is not None:
        card = dataset_card(run_dir, result, options, repo_id=repo_id, license=license_)
    if fmt == "hf" and out is not None and card is not None:
        write_text_atomic(out / "README.md", card)
    if fmt == "hf" and out is not None:
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
    from selfinstruct.stats import file_stats, format_stats

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
