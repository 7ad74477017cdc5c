"""The ``selfinstruct`` command: thin click commands over the library, one call each.

Every user-facing error becomes one line on stderr and an exit code (2 bad input, 3 teacher
failed, 130 interrupted); tracebacks are kept for real bugs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from selfinstruct import __version__
from selfinstruct.config import build_config, parse_assignment
from selfinstruct.errors import SelfInstructError
from selfinstruct.pipeline import RunResult, run_pipeline
from selfinstruct.status import describe_run


class SelfInstructGroup(click.Group):
    """Turns SelfInstructError into ``error: ...`` and its exit code, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SelfInstructError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=SelfInstructGroup)
@click.version_option(__version__, prog_name="selfinstruct")
def cli() -> None:
    """Grow a small set of seed tasks into a clean instruction-tuning dataset (Self-Instruct)."""


@cli.command()
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), help="YAML or TOML config."
)
@click.option("-n", "--num-instructions", type=int, help="Target: instructions with examples.")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (resumes if it exists)."
)
@click.option("--seeds", type=click.Path(path_type=Path), help="Seed tasks (JSONL or JSON list).")
@click.option("--seed", type=int, help="Random seed for demonstration sampling.")
@click.option("--teacher", type=click.Choice(["openai", "local", "vllm"]), help="Teacher backend.")
@click.option(
    "--base-url", multiple=True, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."
)
@click.option("--model", help="Model name (default: the first one the server lists).")
@click.option("--api", type=click.Choice(["chat", "completions"]), help="Which API to call.")
@click.option(
    "--model-path", type=click.Path(path_type=Path), help="GGUF file for --teacher local."
)
@click.option("--max-concurrency", type=int, help="Requests in flight per teacher.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set any config field, e.g. --set filters.rouge_threshold=0.8 (repeatable).",
)
@click.option("--force", is_flag=True, help="Resume even if seeds, prompts or filters changed.")
@click.option("-q", "--quiet", is_flag=True, help="Log lines instead of a progress bar.")
def generate(
    config_path: Path | None,
    num_instructions: int | None,
    out: Path | None,
    seeds: Path | None,
    seed: int | None,
    teacher: str | None,
    base_url: tuple[str, ...],
    model: str | None,
    api: str | None,
    model_path: Path | None,
    max_concurrency: int | None,
    assignments: tuple[str, ...],
    force: bool,
    quiet: bool,
) -> None:
    """Generate instructions, inputs and outputs into a run directory.

    \b
    selfinstruct generate --base-url http://127.0.0.1:8000/v1 -n 100 --out runs/demo
    """
    options = {
        "num_instructions": num_instructions,
        "out": out,
        "seeds": seeds,
        "seed": seed,
        "teacher.kind": teacher,
        "teacher.base_url": list(base_url) or None,
        "teacher.model": model,
        "teacher.api": api,
        "teacher.model_path": model_path,
        "teacher.max_concurrency": max_concurrency,
    }
    overrides: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    overrides.update(parse_assignment(item) for item in assignments)
    config = build_config(config_path, overrides)
    run_dir = config.out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("selfinstruct").setLevel(logging.INFO)
    result = run_pipeline(config, run_dir, force=force, quiet=quiet)
    click.echo(summarize(result))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def status(run_dir: Path) -> None:
    """What a run has done and what is left.

    \b
    selfinstruct status runs/demo
    """
    click.echo(describe_run(run_dir))


def summarize(result: RunResult) -> str:
    """The end-of-run summary: where the files are, counts, rejections by reason, tokens, time."""
    head = "Done" if result.status == "complete" else f"Stopped ({result.stop_reason})"
    lines = [
        f"{head}: {result.instructions_done}/{result.target} instructions, "
        f"{result.examples} examples in {result.elapsed_s:.1f} s",
        f"  dataset:   {result.out / 'examples.jsonl'}",
        f"  rejected:  {result.out / 'rejected.jsonl'} ({sum(result.rejected_by_reason.values())})",
    ]
    for reason, count in sorted(result.rejected_by_reason.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {count:6d}  {reason}")
    for stage, usage in result.usage.items():
        lines.append(
            f"  tokens {stage:<12} {usage.prompt_tokens:>9,} in {usage.completion_tokens:>9,} out"
        )
    lines.append(f"  manifest:  {result.out / 'manifest.json'}")
    lines.extend(f"  note: {note}" for note in result.notes)
    if result.status != "complete":
        lines.append(f"  resume with the same command and --out {result.out}")
    return "\n".join(lines)


def main() -> None:
    cli(prog_name="selfinstruct")


def _register_subcommands() -> None:
    """Commands that live in their own modules (each a thin layer over one library module)."""
    from selfinstruct.cli_data import export, report, stats

    for command in (export, report, stats):
        cli.add_command(command)


_register_subcommands()
