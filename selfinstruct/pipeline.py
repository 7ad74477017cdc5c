"""The pipeline: one asyncio work queue over stage 1 and the declared stage sequence.

Follow one record:

1. a **stage-1 round** (:mod:`selfinstruct.stages.instructions`) shows seed + machine
   demonstrations and returns candidate instructions; each goes through one filter decision
   (heuristics, then ROUGE-L novelty against every kept instruction); a kept one becomes an
   :class:`Instruction` row and a **job** on the queue;
2. a **job** runs the instruction through the stage sequence (by default classify → inputs
   → outputs, :data:`selfinstruct.stages.DEFAULT_SEQUENCE`): each stage turns the job into
   requests, the teacher answers, the stage parses the replies back into the job; then the
   instance filters run and the job's :class:`Example` rows are written together, each with
   the ids of the teacher calls behind it (derived rows too: :mod:`selfinstruct.derive`).

Stage-1 rounds and jobs run concurrently; rounds show and decide in round order
(:mod:`selfinstruct.run.rounds`), so timing never changes them. Jobs run where the executor
(:mod:`selfinstruct.executors`) runs them, here or on Ray workers; only this process writes the
run's files. The run stops when ``num_instructions`` instructions have examples, counted with
jobs written in the order they started (:class:`selfinstruct.jobs.FinishOrder`), so timing never
changes which; later jobs are discarded (they stay pending for a later, larger run).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from selfinstruct.config import RunConfig
from selfinstruct.derive import Derivations
from selfinstruct.errors import CircuitOpen, InputError, Interrupted, TeacherError
from selfinstruct.executors import Executor, ExecutorContext, make_executor
from selfinstruct.filters.instruction_judge import InstructionJudge
from selfinstruct.interrupts import stop_on_signals
from selfinstruct.jobs import BudgetReached, FinishOrder, JobRunner, Schedule
from selfinstruct.progress import Progress
from selfinstruct.records import Instance, Instruction, Manifest, RunResult, RunStatus, SeedTask
from selfinstruct.run.budget import Budget, price_table
from selfinstruct.run.files import read_manifest
from selfinstruct.run.fingerprint import check_resume, fingerprint
from selfinstruct.run.manifest import build_manifest, cache_summary
from selfinstruct.run.rounds import DEMO_LAG_ROUNDS, RoundOrder
from selfinstruct.run.store import NO_VALID_INSTANCES, RunStore
from selfinstruct.seeds import check_seed_count, load_seeds
from selfinstruct.stages import DEFAULT_SEQUENCE, Job, Round, Stage, build_stages
from selfinstruct.teachers.base import Completion, Request
from selfinstruct.teachers.pool import TeacherPool

#: seconds between manifest rewrites while running
MANIFEST_EVERY_S = 5.0


class Pipeline:
    """One run: ``await Pipeline(config, out).run()``."""

    def __init__(
        self,
        config: RunConfig,
        out: Path,
        *,
        force: bool = False,
        quiet: bool = True,
        sequence: Sequence[type[Stage[Job]]] = DEFAULT_SEQUENCE,
    ) -> None:
        self.config = config
        self.out = out
        self.force = force
        self.quiet = quiet
        self.seeds: list[SeedTask] = load_seeds(config.seeds)
        check_seed_count(self.seeds, config.num_seed_demos, config.seeds)
        self.stages = build_stages(
            config, self.seeds, lambda name: config.teacher_for(name).api, sequence
        )
        prompt_sha256 = {name: t.sha256 for name, t in self.stages.templates.items()}
        self.fingerprint = fingerprint(config, config.seeds, prompt_sha256)
        self.prices = price_table(config)  # a bad price file is refused before any write
        configs = {stage: config.teacher_for(stage) for stage in self.stages.names}
        self.teachers = TeacherPool(configs, out, config.max_consecutive_failures, config.cache)
        self.executor: Executor = make_executor(ExecutorContext(
            config, self.seeds, sequence, prompt_sha256, lambda call: self.store.add_call(call),
            lambda base: self.store.state.new_call_id(base), self._check_budget,
        ))  # fmt: skip
        self._stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._draining = False  # a budget was reached: no new request starts
        self._failure: BaseException | None = None
        self._backlog: deque[Instruction] = deque()  # kept, not expanded yet
        self._order = FinishOrder(config.num_instructions, lambda: self._done())  # in start order
        asked = config.instructions_per_request * config.stages.instructions.samples
        self._schedule = Schedule(  # round k waits for round k - lag: lag + 1 in flight
            config.num_instructions, 1, kept=max(1.0, asked / 4), max_rounds=DEMO_LAG_ROUNDS + 1
        )

    # ------------------------------------------------------------------- run
    async def run(self) -> RunResult:
        started = time.monotonic()
        check_resume(self.out, self.fingerprint, self.force)
        with stop_on_signals(self._on_signal):  # from here on, Ctrl-C / SIGTERM stop cleanly
            try:
                await self._open()
                if not self._stop.is_set():
                    await self._run_queue()
            finally:
                await self.executor.aclose()
                await self.teachers.aclose()
        elapsed = time.monotonic() - started
        target = self.config.num_instructions
        status: RunStatus = "complete" if self._done() >= target else "stopped"
        if isinstance(self._failure, CircuitOpen):
            status = "failed"
        self.store.write_manifest(self._manifest(status, elapsed))
        self.store.close()
        if self._failure is not None:
            raise self._failure
        return self.store.state.result(self.out, status, target, elapsed, self._stop_reason)

    async def _open(self) -> None:
        """The run directory (state rebuilt from its files), the judge, the teachers."""
        self.store = RunStore.open(self.out)
        state = self.store.state
        self.budget = Budget(self.config, state, self.prices)
        self.rounds = RoundOrder(state)  # stage-1 demonstrations and decisions in round order
        self.judge = InstructionJudge(self.config.filters)  # novelty vs seeds + kept ones
        for text in [task.instruction for task in self.seeds] + state.instruction_texts:
            self.judge.keep(text)
        await self.teachers.start()
        self.stages.choose_modes(lambda stage: getattr(self.teachers[stage], "schema_style", None))
        self.teachers.before_send(self._check_budget)
        self.budget.check_prices(self.teachers.models())
        models = {stage: self.teachers[stage].model for stage in self.stages.names}
        first = (self.stages.first.name, self.stages.first.prompt.sha)
        self.jobs = JobRunner(
            first, self.stages.sequence, self.config.filters, models, self.config.seed,
            self._call, state.new_call_id,
        )  # fmt: skip
        self.derived = Derivations(self.config, self.stages, self.judge, self.store)
        await self.executor.start(self.jobs)
        self.store.write_manifest(self._manifest("running"))

    def _done(self) -> int:
        return len(self.store.state.with_examples)

    async def _run_queue(self) -> None:
        target = self.config.num_instructions
        self.progress = Progress(
            target, min(self._done(), target), quiet=self.quiet, note=self.teachers.note()
        )
        jobs: set[asyncio.Task[None]] = set()
        requests: set[asyncio.Task[None]] = set()
        self._backlog.extend(self.store.state.pending)
        self._schedule.slots = self.executor.slots(self.teachers[self.stages.first.name])
        last_manifest = time.monotonic()
        stop_waiter = asyncio.create_task(self._stop.wait())
        try:
            while self._done() < target and not self._stop.is_set():
                if self._draining and not jobs and not requests:
                    break
                if not self._draining:  # expansions first, then stage-1 rounds
                    backlog, done = self._backlog, self._done() + self._order.held_with_examples
                    while backlog and self._schedule.wants_job(done, len(jobs), len(requests)):
                        jobs.add(asyncio.create_task(self._expand(backlog.popleft())))
                    if self._schedule.wants_round(done, len(jobs), len(requests), len(backlog)):
                        requests.add(asyncio.create_task(self._generate_instructions()))
                        continue
                finished, _ = await asyncio.wait(
                    jobs | requests | {stop_waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in finished - {stop_waiter}:
                    jobs.discard(task)  # type: ignore[arg-type]
                    requests.discard(task)  # type: ignore[arg-type]
                    self._collect(task)
                if time.monotonic() - last_manifest > MANIFEST_EVERY_S:
                    await self.store.checkpoint(self._manifest("running"))  # off the loop
                    last_manifest = time.monotonic()
        finally:
            for task in jobs | requests | {stop_waiter}:
                task.cancel()
            await asyncio.gather(*jobs, *requests, stop_waiter, return_exceptions=True)
            self.progress.close()

    def _collect(self, task: asyncio.Task[object]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is None or isinstance(error, BudgetReached):
            return  # a budget stops only new work
        if isinstance(error, (CircuitOpen, InputError)) or not isinstance(error, TeacherError):
            self._failure = error
            self._stop_reason = str(error)
            self._stop.set()

    # ------------------------------------------------------------ teachers
    async def _call(
        self, stage: str, request: Request, call_id: str, serves: Sequence[str] = ()
    ) -> Completion:
        """One teacher request unless a budget is reached, recorded in requests.jsonl (its id,
        the instructions it served, its raw reply); a cache miss waits while not needed."""
        self._check_budget()
        record, gate = self.store.add_call, self._order.gate(serves)
        completion = await self.teachers.call(stage, request, call_id, serves, record, gate)
        self._show_progress()
        return completion

    def _check_budget(self) -> None:
        """BudgetReached once a cap is reached: checked when a request is queued, and again
        when a teacher is about to send it (``before_send``)."""
        if self._draining or (reason := self.budget.reached()) is not None:
            if not self._draining:
                self._draining, self._stop_reason = True, reason
            raise BudgetReached(self._stop_reason or "budget reached")

    def _show_progress(self) -> None:
        done = min(self._done(), self.config.num_instructions)
        if self.progress.due(done):
            self.progress.update(done=done, cost=self.budget.cost(), **self.store.state.totals())

    # ------------------------------------------------------------- stage 1
    async def _generate_instructions(self) -> None:
        """One stage-1 round: ask, parse, decide each candidate, queue each kept one."""
        async with self.rounds.numbered() as number:
            await self._round(number)

    async def _round(self, number: int) -> None:
        state = self.store.state
        round_ = Round(
            number=number,
            rng=random.Random(f"{self.config.seed}:instructions:{number}"),
            machine_pool=await self.rounds.machine_pool(number, state.instructions),
        )
        stage = self.stages.first
        (request,) = stage.requests(round_)
        call_id = self.store.state.new_call_id(f"q{number}")
        completion = await self._call(stage.name, request, call_id)
        stage.parse(round_, [completion])
        await self.rounds.turn(number)  # every earlier round is decided first
        kept = 0
        for text in round_.candidates:
            decision = self.judge.decide(text)
            if (drop := decision.drop) is not None:
                round_.reject(stage.name, drop.reason, text, drop.details)
                continue
            row = Instruction(
                id=f"i{len(state.instructions):06d}",
                instruction=text,
                request=number,
                model=completion.model or self.teachers[stage.name].model,
                max_rouge=decision.score,
                most_similar=decision.nearest,
                call=call_id,
            )
            self.judge.keep(text)
            self.store.add_instruction(row)
            self._backlog.append(row)
            kept += 1
        self.store.add_rejections(round_.rejections)
        self._schedule.round_done(kept)
        if (reason := self.rounds.count(kept)) is not None:
            self._stop_reason = reason
            self._stop.set()
        self._show_progress()

    # ---------------------------------------------------------- the sequence
    async def _expand(self, row: Instruction) -> None:  # where the executor runs jobs
        await self._order.run(row.id, self.executor.expand(row), self._finish_job)

    def _finish_job(self, job: Job, kept: list[Instance]) -> None:
        """What the driver does with a finished job: write its rows together."""
        if self._done() >= self.config.num_instructions:
            return  # the target was reached meanwhile: leave this instruction pending
        examples = job.examples(kept)
        self._schedule.job_done(bool(examples))
        if not examples:
            job.reject(job.answered_by, NO_VALID_INSTANCES, "")
        self._backlog.extendleft(self.derived.write_job(job, examples))  # derived ones first
        self._show_progress()

    # ------------------------------------------------------------- stopping
    def _on_signal(self, name: str) -> None:
        self._stop_reason = f"interrupted by {name}"
        self._failure = Interrupted.at(name, self._done(), self.config.num_instructions, self.out)
        self._stop.set()

    def _manifest(self, status: RunStatus, elapsed: float | None = None) -> Manifest:
        return build_manifest(
            self.store.state, config=self.config, fingerprint=self.fingerprint, status=status,
            previous=read_manifest(self.out), elapsed_s=elapsed, cost_usd=self.budget.cost(),
            endpoints=self.teachers.endpoint_stats(), stop_reason=self._stop_reason,
            executor=self.executor.stats(), stage_modes=self.stages.mode_names(),
            cache=cache_summary(self.store.state, self.teachers.cache, self.prices),
        )  # fmt: skip


def run_pipeline(
    config: RunConfig, out: Path, *, force: bool = False, quiet: bool = True
) -> RunResult:
    """Synchronous entry point for the library API and the CLI."""
    return asyncio.run(Pipeline(config, out, force=force, quiet=quiet).run())
