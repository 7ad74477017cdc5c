"""``selfinstruct preview --live``: ask the teachers, for real, with one instruction.

1. every OpenAI-compatible endpoint is asked for its models (``GET /models``); then the
   teachers start as in a run (model discovery, the capability probe);
2. stage-1 rounds (at most ``rounds``) until one candidate passes the filters (heuristics,
   then ROUGE-L against the seeds), each candidate's decision recorded;
3. that instruction runs through the stage sequence with :class:`selfinstruct.jobs.JobRunner`
   (the run's own per-instruction code, instance filters included), each stage observed
   after it parsed its replies.

Nothing is written to a run directory: teacher calls are kept in memory, and a teacher that
needs a folder (the Batch API's journal) gets a temporary one, removed at the end.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import openai

from selfinstruct.config import RunConfig
from selfinstruct.errors import TeacherUnavailable
from selfinstruct.filters.instruction_judge import InstructionJudge
from selfinstruct.jobs import JobRunner
from selfinstruct.records import Instance, Instruction, Rejection, SeedTask, TeacherCall
from selfinstruct.run.budget import UsageLine, price_table, total_cost, usage_lines
from selfinstruct.seeds import load_seeds
from selfinstruct.stages import DEFAULT_SEQUENCE, Job, Round, Stage, Stages, build_stages
from selfinstruct.stages.base import Template
from selfinstruct.teachers import openai_wire as wire
from selfinstruct.teachers.base import Completion, Request, TeacherSettings
from selfinstruct.teachers.pool import TeacherPool


@dataclass(frozen=True)
class Exchange:
    """One teacher call: what was sent and what came back."""

    stage: str
    request: Request
    completion: Completion


@dataclass(frozen=True)
class EndpointCheck:
    """An endpoint's answer to ``GET /models`` (or why there was none) and what the probe
    found it honours."""

    url: str
    models: tuple[str, ...] = ()
    error: str | None = None
    capabilities: dict[str, bool | None] = field(default_factory=dict)


@dataclass(frozen=True)
class CandidateDecision:
    """A stage-1 candidate and the filters' verdict on it."""

    text: str
    reason: str | None  # None: kept
    score: float
    nearest: str | None


@dataclass
class RoundStep:
    number: int
    exchange: Exchange
    candidates: list[CandidateDecision]
    rejections: list[Rejection]  # the round's own (e.g. unparseable)


@dataclass
class StageStep:
    """A sequence stage after it parsed its replies: its calls, the job's state, new
    rejections."""

    name: str
    exchanges: list[Exchange]
    is_classification: bool
    drafts: list[tuple[str, str | None]]
    rejections: list[Rejection]


@dataclass
class LivePreview:
    endpoints: list[EndpointCheck]
    models: dict[str, str]  # stage -> the model its teacher uses
    rounds: list[RoundStep]
    instruction: str | None = None
    steps: list[StageStep] = field(default_factory=list)
    kept: list[Instance] = field(default_factory=list)
    dropped: list[Rejection] = field(default_factory=list)  # by the instance filters
    usage: list[UsageLine] = field(default_factory=list)
    cost: tuple[float, bool] = (0.0, True)


def run_live_preview(
    config: RunConfig,
    seeds: list[SeedTask] | None = None,
    stages: Stages | None = None,
    *,
    sequence: Sequence[type[Stage[Job]]] = DEFAULT_SEQUENCE,
    rounds: int = 3,
) -> LivePreview:
    """The live preview (see the module docstring). ``seeds`` and ``stages`` as
    :func:`~selfinstruct.preview.offline.preview_config` loaded and built them (loaded and
    built here from ``config`` and ``sequence`` when None)."""
    if seeds is None:
        seeds = load_seeds(config.seeds)
    if stages is None:
        stages = build_stages(config, seeds, lambda n: config.teacher_for(n).api, sequence)
    return asyncio.run(_live(config, seeds, stages, rounds))


async def _live(
    config: RunConfig, seeds: list[SeedTask], stages: Stages, rounds: int
) -> LivePreview:
    configs = {name: config.teacher_for(name) for name in stages.names}
    endpoints = await list_models(list(configs.values()))
    if endpoints and all(check.error for check in endpoints):
        raise TeacherUnavailable("; ".join(f"{c.url}: {c.error}" for c in endpoints))
    calls: list[TeacherCall] = []
    with tempfile.TemporaryDirectory(prefix="selfinstruct-preview-") as scratch:
        pool = TeacherPool(configs, Path(scratch), config.max_consecutive_failures)
        try:
            await pool.start()
            result = await _one_instruction(config, seeds, stages, pool, calls, rounds)
            stats = pool.endpoint_stats()
        finally:
            await pool.aclose()
    result.endpoints = [
        EndpointCheck(c.url, c.models, c.error, dict(stats.get(c.url, {}).get("capabilities", {})))
        for c in endpoints
    ]
    result.usage = usage_lines(calls, price_table(config))
    result.cost = total_cost(result.usage)
    return result


async def list_models(configs: list[TeacherSettings]) -> list[EndpointCheck]:
    """``GET /models`` on every distinct OpenAI-compatible endpoint of these teachers."""
    checks: dict[str, EndpointCheck] = {}
    for teacher in configs:
        urls = getattr(teacher, "base_url", None)
        if not urls or not hasattr(teacher, "key"):
            continue
        for url in urls:
            url = url.rstrip("/")
            if url not in checks:
                checks[url] = await _models_at(url, teacher.key(), teacher.timeout_s)
    return list(checks.values())


async def _models_at(url: str, key: str, timeout_s: float) -> EndpointCheck:
    client = wire.make_client(url, key, min(timeout_s, 30.0))
    try:
        page = await client.models.list()
        listed = getattr(page, "data", None) or []
        ids = tuple(str(m.id) for m in listed if getattr(m, "id", None))
        return EndpointCheck(url, ids, None if ids else "it lists no model")
    except (openai.OpenAIError, ValueError) as exc:
        return EndpointCheck(url, (), wire.scrub(wire.describe(exc, url, timeout_s), key))
    finally:
        await client.close()


async def _one_instruction(
    config: RunConfig,
    seeds: list[SeedTask],
    stages: Stages,
    pool: TeacherPool,
    calls: list[TeacherCall],
    rounds: int,
) -> LivePreview:
    exchanges: list[Exchange] = []
    counter = iter(range(1 << 30))

    async def send(stage: str, request: Request, call_id: str, serves: Sequence[str]) -> Completion:
        completion = await pool.call(stage, request, call_id, serves, calls.append)
        exchanges.append(Exchange(stage, request, completion))
        return completion

    models = {name: pool[name].model for name in stages.names}
    result = LivePreview(endpoints=[], models=models, rounds=[])
    judge = InstructionJudge(config.filters)
    for task in seeds:  # novelty against the seeds, as in a run's first round
        judge.keep(task.instruction)
    kept_text = await _stage_one(config, stages, judge, send, exchanges, result, rounds)
    if kept_text is None:
        return result
    result.instruction = kept_text
    observed = [_Observed(stage, result.steps, exchanges) for stage in stages.sequence]
    runner = JobRunner(
        (stages.first.name, stages.first.prompt.sha), observed, config.filters, models,
        config.seed, send, lambda base: f"preview.{base}.{next(counter)}",
    )  # fmt: skip
    first_model = models[stages.first.name]
    row = Instruction(
        id="i000000", instruction=kept_text, request=0, model=first_model, max_rouge=0.0
    )
    job = runner.new_job(row)
    before = len(job.rejections)
    result.kept = await runner.run(job)
    seen = {id(r) for step in result.steps for r in step.rejections}
    result.dropped = [r for r in job.rejections[before:] if id(r) not in seen]
    return result


async def _stage_one(
    config: RunConfig,
    stages: Stages,
    judge: InstructionJudge,
    send: Any,
    exchanges: list[Exchange],
    result: LivePreview,
    rounds: int,
) -> str | None:
    """Stage-1 rounds until one candidate is kept; that candidate's text, or None."""
    first = stages.first
    for number in range(rounds):
        round_ = Round(number, random.Random(f"{config.seed}:instructions:{number}"), [])
        (request,) = first.requests(round_)
        await send(first.name, request, f"preview.q{number}", ())
        first.parse(round_, [exchanges[-1].completion])
        decisions = []
        for text in round_.candidates:
            decision = judge.decide(text)
            reason = decision.drop.reason if decision.drop is not None else None
            decisions.append(CandidateDecision(text, reason, decision.score, decision.nearest))
        result.rounds.append(RoundStep(number, exchanges[-1], decisions, round_.rejections))
        kept = next((d.text for d in decisions if d.reason is None), None)
        if kept is not None:
            return kept
    return None


class _Observed:
    """A sequence stage, unchanged, whose parse also records the job's state afterwards."""

    templates: ClassVar[tuple[Template, ...]] = ()

    def __init__(
        self, stage: Stage[Job], steps: list[StageStep], exchanges: list[Exchange]
    ) -> None:
        self.stage, self.steps, self.exchanges = stage, steps, exchanges
        self.name = stage.name
        self._mark = 0

    def requests(self, job: Job) -> list[Request]:
        self._mark = len(self.exchanges)
        return self.stage.requests(job)

    def parse(self, job: Job, completions: list[Completion]) -> None:
        before = len(job.rejections)
        self.stage.parse(job, completions)
        self.steps.append(
            StageStep(
                self.name,
                [e for e in self.exchanges[self._mark :] if e.stage == self.name],
                job.is_classification,
                [(draft.input, draft.output) for draft in job.drafts],
                job.rejections[before:],
            )
        )
