"""``selfinstruct estimate``: requests, tokens, cost and time for a run of N, before running it.

The basis is measured, never guessed: the per-instruction averages of a finished (or
stopped) run — a previous run with ``--from-run DIR``, or a small pilot run of the same config
that ``estimate`` makes first (``--pilot K``, real requests, their cost is printed too).
Every figure scales linearly with N: stage-1 requests are amortised over the instructions
they yield, and rejected work is included because it is part of the measured average.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from selfinstruct.errors import InputError
from selfinstruct.records import Usage
from selfinstruct.run.budget import PriceTable, usage_cost
from selfinstruct.run.files import read_manifest
from selfinstruct.run.store import load_state


@dataclass(frozen=True)
class Estimate:
    """Expected totals for ``instructions`` instructions, and what they were scaled from."""

    instructions: int
    basis_dir: Path
    basis_instructions: int
    requests: dict[str, float]
    usage: dict[str, tuple[float, float]]  # stage -> (prompt tokens, completion tokens)
    cost_usd: float | None
    seconds: float | None

    @property
    def total_tokens(self) -> float:
        return sum(prompt + completion for prompt, completion in self.usage.values())


def estimate_from_run(
    run_dir: Path,
    instructions: int,
    prices: PriceTable,
    price_as: Mapping[str, str] | None = None,
) -> Estimate:
    """Scale the measured per-instruction averages of ``run_dir`` to ``instructions``; its
    tokens are priced at the models that made them, or, when ``price_as`` names a model for
    every stage the run used, at those (a run made with one model, estimated for another)."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise InputError("not a run directory (no manifest.json)", path=run_dir)
    state = load_state(run_dir, repair=False)
    done = len(state.with_examples)
    if done == 0:
        raise InputError("this run has no finished instruction to measure yet", path=run_dir)
    scale = instructions / done
    # what the work cost, cached replies included: the run scaled to may find none cached
    cost = usage_cost(state.work_usage_by_model, prices)
    if price_as and all(price_as.get(stage) for stage in state.work_usage):
        by_stage = [
            usage_cost({price_as[stage]: usage}, prices)
            for stage, usage in state.work_usage.items()
        ]
        cost = None if None in by_stage else sum(c for c in by_stage if c is not None)
    seconds = manifest.timings_s.get("total")
    return Estimate(
        instructions=instructions,
        basis_dir=run_dir,
        basis_instructions=done,
        requests={stage: count * scale for stage, count in state.requests.items()},
        usage={
            stage: (usage.prompt_tokens * scale, usage.completion_tokens * scale)
            for stage, usage in state.work_usage.items()
        },
        cost_usd=None if cost is None else cost * scale,
        seconds=None if seconds is None else seconds * scale,
    )


def measured_total_tokens(run_dir: Path) -> int:
    """The tokens a run's replies cost, cached ones included (for comparing with its
    estimate)."""
    usage = sum(load_state(run_dir, repair=False).work_usage.values(), Usage())
    return usage.total_tokens


def format_estimate(estimate: Estimate) -> str:
    lines = [
        f"Estimate for {estimate.instructions:,} instructions "
        f"(scaled from {estimate.basis_instructions} measured in {estimate.basis_dir}):",
        f"  {'stage':<13}{'requests':>10}{'prompt tokens':>16}{'completion tokens':>20}",
    ]
    for stage, (prompt, completion) in estimate.usage.items():
        requests = estimate.requests.get(stage, 0.0)
        lines.append(f"  {stage:<13}{requests:>10,.0f}{prompt:>16,.0f}{completion:>20,.0f}")
    total_requests = sum(estimate.requests.values())
    prompt = sum(prompt for prompt, _ in estimate.usage.values())
    completion = sum(completion for _, completion in estimate.usage.values())
    lines.append(f"  {'total':<13}{total_requests:>10,.0f}{prompt:>16,.0f}{completion:>20,.0f}")
    cost = (
        "unknown (a model has no price)"
        if estimate.cost_usd is None
        else (f"${estimate.cost_usd:,.2f}")
    )
    lines.append(f"  cost          {cost}")
    if estimate.seconds is not None:
        lines.append(f"  time          {_duration(estimate.seconds)} at the measured pace")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
