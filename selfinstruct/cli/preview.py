"""``selfinstruct preview``: check a run's inputs and show one request of every stage."""

from __future__ import annotations

from typing import Any

import click

from selfinstruct.cli.run import build_run_config, run_options
from selfinstruct.preview import preview_config, preview_text
from selfinstruct.preview.live import run_live_preview
from selfinstruct.preview.show import live_text


@click.command()
@run_options
@click.option("--live", is_flag=True,
              help="Also call the teacher: list the endpoint's models, then run one "
                   "instruction through every stage.")
@click.option("--task", metavar="ID",
              help="The seed task that stands in for a kept instruction (default: the first "
                   "that is not a classification task).")
@click.option("--rounds", type=click.IntRange(1, 20), default=3, show_default=True,
              help="--live: most stage-1 rounds to try for one kept instruction.")
@click.option("--max-chars", type=click.IntRange(0), default=1500, show_default=True,
              help="Cut each message shown after this many characters (0: whole).")
def preview(live: bool, task: str | None, rounds: int, max_chars: int, **options: Any) -> None:
    """Validate the config, seeds, prompts and prices and show the request every stage
    would send (no teacher call, nothing written). With --live, also ask the teacher.

    \b
    selfinstruct preview
    selfinstruct preview --config my-run.yaml --api completions
    selfinstruct preview --base-url http://127.0.0.1:8000/v1 --live
    """  # fmt: skip
    options.pop("num_instructions", None)  # accepted like generate's, unused
    config = build_run_config(**options)
    found = preview_config(config, task=task)
    click.echo(preview_text(found, max_chars))
    if live:
        result = run_live_preview(config, found.seeds, found.built, rounds=rounds)
        click.echo(live_text(result, max_chars))
