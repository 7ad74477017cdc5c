"""``generate``, ``estimate`` and ``status``: start, size and inspect a run directory."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from selfinstruct.config import RunConfig, build_config, parse_assignment
from selfinstruct.pipeline import run_pipeline
from selfinstruct.records import STAGES, RunResult
from selfinstruct.run.budget import price_table, run_cost
from selfinstruct.run.estimate import estimate_from_run, format_estimate
from selfinstruct.run.status import describe_run


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that build a RunConfig, shared by ``generate`` and ``estimate``."""
    options = [
        click.option("--config", "config_path", type=click.Path(path_type=Path),
                     help="YAML or TOML config."),
        click.option("-n", "--num-instructions", type=int,
                     help="Target: instructions with examples."),
        click.option("--seeds", type=click.Path(path_type=Path),
                     help="Seed tasks (JSONL or JSON list)."),
        click.option("--seed", type=int, help="Random seed for demonstration sampling."),
        click.option("--teacher", type=click.Choice(["openai", "local", "vllm", "openai-batch"]),
                     help="Teacher backend."),
        click.option("--base-url", multiple=True,
                     help="OpenAI-compatible endpoint (repeatable), e.g. http://127.0.0.1:8000/v1."),
        click.option("--model", help="Model name (default: the first one the server lists)."),
        click.option("--api", type=click.Choice(["chat", "completions"]), help="API to call."),
        click.option("--model-path", type=click.Path(path_type=Path),
                     help="GGUF file for --teacher local."),
        click.option("--max-concurrency", type=int, help="Requests in flight per teacher."),
        click.option("--max-cost", type=float, help="Stop cleanly once this many USD are spent."),
        click.option("--max-tokens", type=int, help="Stop cleanly after this many tokens."),
        click.option("--prices", type=click.Path(path_type=Path),
                     help="Price table (YAML/TOML, USD per 1M tokens) over the shipped one."),
        click.option("--cache", type=click.Path(path_type=Path),
                     help="Response cache (default: ~/.cache/selfinstruct/responses.sqlite3)."),
        click.option("--no-cache", is_flag=True,
                     help="Neither re-use nor store teacher replies."),
        click.option("--executor", type=click.Choice(["local", "ray"]),
                     help="Where each instruction's work runs (ray: on a Ray cluster)."),
        click.option("--ray-address",
                     help="Ray for --executor ray: auto or HOST:PORT (unset: a local Ray)."),
        click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                     help="Set any config field, e.g. --set filters.rouge_threshold=0.8."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def build_run_config(
    config_path: Path | None = None,
    assignments: tuple[str, ...] = (),
    base_url: tuple[str, ...] = (),
    **options: Any,
) -> RunConfig:
    """Config file < environment < these options; ``--set`` assignments win last."""
    names = {
        "num_instructions": "num_instructions",
        "seeds": "seeds",
        "seed": "seed",
        "out": "out",
        "teacher": "teacher.kind",
        "model": "teacher.model",
        "api": "teacher.api",
        "model_path": "teacher.model_path",
        "max_concurrency": "teacher.max_concurrency",
        "max_cost": "budget.max_cost_usd",
        "max_tokens": "budget.max_tokens",
        "prices": "budget.prices_file",
        "cache": "cache.path",
        "executor": "executor.kind",
        "ray_address": "executor.ray_address",
    }
    no_cache = options.pop("no_cache", False)
    overrides: dict[str, Any] = {
        names[key]: value for key, value in options.items() if value is not None
    }
    if no_cache:
        overrides["cache.enabled"] = False
    if base_url:
        overrides["teacher.base_url"] = list(base_url)
    overrides.update(parse_assignment(item) for item in assignments)
    return build_config(config_path, overrides)


@click.command()
@run_options
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (resumes if it exists)."
)
@click.option("--force", is_flag=True, help="Resume even if seeds, prompts or filters changed.")
@click.option("-q", "--quiet", is_flag=True, help="Log lines instead of a progress bar.")
def generate(force: bool, quiet: bool, **options: Any) -> None:
    """Generate instructions, inputs and outputs into a run directory.

    \b
    selfinstruct generate --base-url http://127.0.0.1:8000/v1 -n 100 --out runs/demo
    selfinstruct generate --model gpt-4o-mini -n 500 --max-cost 5 --out runs/openai
    """
    config = build_run_config(**options)
    run_dir = config.out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    _setup_logging()
    gc.set_threshold(*GC_THRESHOLDS)
    result = run_pipeline(config, run_dir, force=force, quiet=quiet)
    click.echo(summarize(result))


@click.command()
@run_options
@click.option(
    "--from-run",
    type=click.Path(path_type=Path),
    help="Scale the measured averages of this earlier run.",
)
@click.option(
    "--pilot",
    type=int,
    default=5,
    show_default=True,
    help="Without --from-run: first run this many instructions for real to measure.",
)
@click.option(
    "--pilot-out",
    type=click.Path(path_type=Path),
    help="Where the pilot run goes (default: runs/pilot-<time>); resumable like any run.",
)
def estimate(from_run: Path | None, pilot: int, pilot_out: Path | None, **options: Any) -> None:
    """Expected requests, tokens, cost and time for -n instructions, before a run.

    \b
    selfinstruct estimate --base-url http://127.0.0.1:8000/v1 -n 10000 --pilot 10
    selfinstruct estimate --model gpt-4o-mini -n 50000 --from-run runs/openai
    """  # fmt: skip
    config = build_run_config(**options)
    prices = price_table(config)
    if from_run is None:
        pilot_dir = pilot_out or Path("runs") / datetime.now().strftime("pilot-%Y%m%d-%H%M%S")
        _setup_logging()
        pilot_config = config.model_copy(update={"num_instructions": pilot})
        result = run_pipeline(pilot_config, pilot_dir, quiet=True)
        cost = run_cost(pilot_dir, prices)
        spent = "unknown cost" if cost is None else f"${cost:,.4f}"
        click.echo(f"Pilot: {result.instructions_done} instructions in {pilot_dir} ({spent})")
        from_run = pilot_dir
    named = {stage: config.teacher_for(stage).model or "" for stage in STAGES}  # --model: priced
    estimate = estimate_from_run(from_run, config.num_instructions, prices, named)
    click.echo(format_estimate(estimate))


#: the cyclic garbage collector's thresholds for a run: at Python's (700, 10, 10) a run's bursts
#: of short-lived request objects set off a collection every few hundred requests and full
#: collections that stall the event loop for up to ~70 ms as the run's data grows (9% of the CPU
#: of a 5,000-instruction run at L=0, bench/README.md); most garbage is freed by reference
#: counting, and cycles are still collected
GC_THRESHOLDS = (10_000, 20, 20)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("selfinstruct").setLevel(logging.INFO)


@click.command()
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
