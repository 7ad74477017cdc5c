"""The pipeline: one asyncio work queue that composes stages, teachers, filters and the store.

Follow one record:

1. a **stage-1 request** shows seed + machine demonstrations and returns candidate
   instructions; each candidate goes through the heuristic filters and the ROUGE-L novelty
   index; a kept one becomes an :class:`Instruction` row and a **job** on the queue;
2. a **job** expands one instruction: classification identification, then stage 2
   (output-first for classification, input-first otherwise), then stage 3 answers every
   input; the instance filters run and the job's :class:`Example` rows are written together.

Stage-1 requests and jobs run concurrently (the teacher's own limit bounds how many requests
are in flight), so stage-2/3 work for an instruction starts as soon as it is kept. The run
stops when ``num_instructions`` instructions have examples; jobs finishing after that are
discarded (their instructions stay pending for a later, larger run), so a finished run holds
exactly the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from selfinstruct import __version__
from selfinstruct.config import RunConfig
from selfinstruct.errors import CircuitOpen, InputError, Interrupted, TeacherError
from selfinstruct.filters.base import Drop, Remembers, TextFilter
from selfinstruct.filters.heuristics import build_instruction_filters, first_drop
from selfinstruct.filters.instances import filter_instances
from selfinstruct.filters.rouge import RougeIndex
from selfinstruct.pricing import Price, PriceTable, load_prices
from selfinstruct.progress import Progress
from selfinstruct.prompts import PromptTemplate, default_prompt_path, load_template
from selfinstruct.records import (
    Counts,
    Example,
    Instance,
    Instruction,
    Manifest,
    Provenance,
    Rejection,
    SeedTask,
    Stage,
    TeacherCall,
    Usage,
)
from selfinstruct.seeds import load_seeds
from selfinstruct.stages import classify, inputs, instructions, outputs
from selfinstruct.stages.common import StagePrompt
from selfinstruct.store import NO_VALID_INSTANCES, RunStore, load_state, read_manifest
from selfinstruct.teachers import Teacher, make_teacher
from selfinstruct.teachers.base import Completion, Request
from selfinstruct.teachers.openai_batch import OpenAIBatchConfig

#: stop after this many stage-1 requests in a row that keep no instruction
MAX_FRUITLESS_REQUESTS = 50
#: seconds between manifest rewrites while running
MANIFEST_EVERY_S = 5.0


class BudgetReached(Exception):
    """Raised instead of starting a request once a cost or token cap is reached."""


@dataclass
class RunResult:
    """What a finished (or stopped) run holds; the CLI prints it."""

    out: Path
    status: str
    target: int
    instructions_done: int
    examples: int
    rejected_by_reason: dict[str, int]
    usage: dict[str, Usage]
    elapsed_s: float
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Prompts:
    """Every stage's template, keyed by the name used in provenance."""

    templates: dict[str, PromptTemplate]

    def sha(self, name: str) -> str:
        return self.templates[name].sha256[:16]


def load_prompts(config: RunConfig) -> Prompts:
    """Load each stage's template (the config's file or the API-appropriate default)."""
    stages = config.stages
    wanted: list[tuple[str, Stage, Path | None, set[str]]] = [
        ("instructions", "instructions", stages.instructions.prompt, instructions.PLACEHOLDERS),
        ("classify", "classify", stages.classify.prompt, classify.PLACEHOLDERS),
        ("inputs.input_first", "inputs", stages.inputs.prompt, inputs.PLACEHOLDERS),
        ("inputs.output_first", "inputs", stages.inputs.output_first_prompt, inputs.PLACEHOLDERS),
        ("outputs", "outputs", stages.outputs.prompt, outputs.PLACEHOLDERS),
    ]
    templates = {}
    for name, stage, configured, allowed in wanted:
        api = config.teacher_for(stage).api
        path = configured or default_prompt_path(name, api)
        templates[name] = load_template(path, allowed)
    return Prompts(templates)


def fingerprint(config: RunConfig, seeds_path: Path, prompts: Prompts) -> dict[str, str]:
    """What must not change between a run and its resume (else the data would be inconsistent)."""
    filters = config.filters.model_dump_json()
    result = {
        "seeds_sha256": hashlib.sha256(seeds_path.read_bytes()).hexdigest(),
        "filters_sha256": hashlib.sha256(filters.encode()).hexdigest(),
        "rouge_threshold": repr(config.filters.rouge_threshold),
    }
    for name, template in prompts.templates.items():
        result[f"prompt:{name}"] = template.sha256
    return result


def check_resume(out: Path, expected: dict[str, str], force: bool) -> None:
    """Refuse to continue a run made with other seeds, prompts or filters (unless forced)."""
    manifest = read_manifest(out)
    if manifest is None or force:
        return
    changed = sorted(
        key
        for key in set(expected) | set(manifest.fingerprint)
        if expected.get(key) != manifest.fingerprint.get(key)
    )
    if changed:
        raise InputError(
            "this run was made with other settings (changed: "
            + ", ".join(changed)
            + "); resuming would mix inconsistent data. Use another --out, or --force",
            path=out,
        )


def package_versions() -> dict[str, str]:
    versions = {"selfinstruct": __version__}
    for name in ("openai", "pydantic", "rouge-score", "rapidfuzz", "llama-cpp-python", "vllm"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


class Pipeline:
    """One run: ``await Pipeline(config, out).run()``."""

    def __init__(
        self, config: RunConfig, out: Path, *, force: bool = False, quiet: bool = True
    ) -> None:
        self.config = config
        self.out = out
        self.force = force
        self.quiet = quiet
        self.seeds: list[SeedTask] = load_seeds(config.seeds)
        _check_seed_count(config, self.seeds)
        self.prompts = load_prompts(config)
        self.fingerprint = fingerprint(config, config.seeds, self.prompts)
        self.prices = self.price_table(config)
        self.teachers: dict[Stage, Teacher] = {}
        self._stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._consecutive_failures = 0
        self._fruitless_requests = 0
        self._draining = False  # a budget was reached: no new request starts
        self._failure: BaseException | None = None

    # ----------------------------------------------------------------- setup
    def _build_teachers(self) -> None:
        built: dict[str, Teacher] = {}
        for stage in ("instructions", "classify", "inputs", "outputs"):
            teacher_config = self.config.teacher_for(stage)
            if isinstance(teacher_config, OpenAIBatchConfig) and teacher_config.batch_dir is None:
                # the Batch API journal lives with the run, so a resume never pays twice
                journal = self.out / "batches"
                teacher_config = teacher_config.model_copy(update={"batch_dir": journal})
            key = teacher_config.model_dump_json()
            if key not in built:
                built[key] = make_teacher(teacher_config)
            self.teachers[stage] = built[key]

    def _build_stages(self) -> None:
        config, templates = self.config, self.prompts.templates

        def bound(stage: Stage, name: str) -> StagePrompt:
            return StagePrompt(
                stage=stage,
                template=templates[name],
                api=self.teachers[stage].api,
                sampling=config.stages.get(stage).sampling,
            )

        self.stage1 = instructions.InstructionStage(
            bound("instructions", "instructions"), config.instructions_per_request
        )
        self.classifier = classify.ClassifyStage(bound("classify", "classify"))
        self.inputs = inputs.InputStage(
            bound("inputs", "inputs.input_first"),
            bound("inputs", "inputs.output_first"),
            config.max_instances_per_instruction,
        )
        self.answers = outputs.OutputStage(bound("outputs", "outputs"))
        # Demonstrations for classification and stages 2/3 are drawn once per run, as the
        # paper's fixed prompts were: every request of a stage then shares one prompt prefix,
        # which servers with prefix caching (llama.cpp, vLLM, SGLang) evaluate only once.
        rng = random.Random(f"{config.seed}:demos")
        self.demos = {
            "classify": classify.pick_demos(rng, self.seeds, config.classify_demos),
            "output_first": inputs.pick_demos(rng, self.seeds, config.instance_demos, True),
            "input_first": inputs.pick_demos(rng, self.seeds, config.instance_demos, False),
            "outputs": outputs.pick_demos(rng, self.seeds, config.instance_demos),
        }

    def _build_filters(self) -> None:
        self.filters: list[TextFilter] = build_instruction_filters(self.config.filters)
        self.remembering = [rule for rule in self.filters if isinstance(rule, Remembers)]
        self.index = RougeIndex(self.config.filters.rouge_threshold)
        self.seed_texts = [task.instruction for task in self.seeds]
        for text in self.seed_texts + [row.instruction for row in self.store.state.instructions]:
            self._remember(text)

    def _remember(self, text: str) -> None:
        self.index.add(text)
        for rule in self.remembering:
            rule.add(text)

    # ------------------------------------------------------------------- run
    async def run(self) -> RunResult:
        started = time.monotonic()
        check_resume(self.out, self.fingerprint, self.force)
        self._install_signal_handlers()  # from here on, Ctrl-C / SIGTERM stop cleanly
        try:
            self.store = RunStore.open(self.out)
            self.created_at = _existing_created_at(self.out) or _now()
            notes = list(self.store.state.repaired)
            self._build_filters()
            self._build_teachers()
            for teacher in {id(t): t for t in self.teachers.values()}.values():
                await teacher.start()
            self._check_prices()
            self._build_stages()
            self._write_manifest("running")
            if not self._stop.is_set():
                await self._run_queue()
        finally:
            await self._shutdown()
            self._remove_signal_handlers()
        elapsed = time.monotonic() - started
        status = "complete" if self._done() >= self.config.num_instructions else "stopped"
        if isinstance(self._failure, CircuitOpen):
            status = "failed"
        self._write_manifest(status, elapsed)
        self.store.close()
        if self._failure is not None:
            raise self._failure
        state = self.store.state
        return RunResult(
            out=self.out,
            status=status,
            target=self.config.num_instructions,
            instructions_done=self._done(),
            examples=len(state.example_ids),
            rejected_by_reason=dict(state.rejected_by_reason),
            usage=dict(state.usage),
            elapsed_s=elapsed,
            stop_reason=self._stop_reason,
            notes=notes,
        )

    def _done(self) -> int:
        return len(self.store.state.with_examples)

    async def _run_queue(self) -> None:
        target = self.config.num_instructions
        self.progress = Progress(
            target, min(self._done(), target), quiet=self.quiet, note=_teacher_note(self.teachers)
        )
        jobs: set[asyncio.Task[None]] = set()
        requests: set[asyncio.Task[None]] = set()
        stage1_limit = max(1, self.teachers["instructions"].max_concurrency // 16)
        for row in self.store.state.pending:
            jobs.add(asyncio.create_task(self._expand(row)))
        last_manifest = time.monotonic()
        stop_waiter = asyncio.create_task(self._stop.wait())
        try:
            while self._done() < target and not self._stop.is_set():
                if self._draining and not jobs and not requests:
                    break
                wanted = target - self._done() - len(jobs)
                if not self._draining and wanted > 0 and len(requests) < stage1_limit:
                    requests.add(asyncio.create_task(self._generate_instructions(jobs)))
                    continue
                finished, _ = await asyncio.wait(
                    jobs | requests | {stop_waiter}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in finished - {stop_waiter}:
                    jobs.discard(task)  # type: ignore[arg-type]
                    requests.discard(task)  # type: ignore[arg-type]
                    self._collect(task)
                if time.monotonic() - last_manifest > MANIFEST_EVERY_S:
                    self._write_manifest("running")
                    self.store.sync()
                    last_manifest = time.monotonic()
        finally:
            for task in jobs | requests | {stop_waiter}:
                task.cancel()
            await asyncio.gather(*jobs, *requests, stop_waiter, return_exceptions=True)
            self.progress.close()

    def _collect(self, task: asyncio.Task[object]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None or isinstance(error, BudgetReached):
            return
        if isinstance(error, (CircuitOpen, InputError)) or not isinstance(error, TeacherError):
            self._failure = error
            self._stop_reason = str(error)
            self._stop.set()

    # ------------------------------------------------------------ teachers
    async def _call(self, stage: Stage, request: Request) -> Completion:
        """One teacher request, logged to requests.jsonl; counts failures for the breaker."""
        if self._draining or (reason := self._budget_reached()) is not None:
            if not self._draining:
                self._draining, self._stop_reason = True, reason
            raise BudgetReached(self._stop_reason or "budget reached")
        teacher = self.teachers[stage]
        started = time.monotonic()
        try:
            completion = await teacher.complete(request)
        except TeacherError as exc:
            self.store.add_call(
                TeacherCall(
                    stage=stage,
                    model=teacher.model,
                    usage=Usage(),
                    latency_s=time.monotonic() - started,
                    error=str(exc)[:500],
                )
            )
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.config.max_consecutive_failures:
                raise CircuitOpen(
                    f"{self._consecutive_failures} teacher requests failed in a row "
                    f"(last: {exc}); stopping. Everything so far is saved: rerun to resume"
                ) from None
            raise
        self._consecutive_failures = 0
        self.store.add_call(
            TeacherCall(
                stage=stage,
                model=completion.model or teacher.model,
                usage=completion.usage,
                finish_reason=completion.finish_reason,
                latency_s=completion.latency_s or time.monotonic() - started,
            )
        )
        self._show_progress()
        return completion

    def _show_progress(self) -> None:
        state = self.store.state
        self.progress.update(
            done=min(self._done(), self.config.num_instructions),
            examples=len(state.example_ids),
            rejected=sum(state.rejected_by_reason.values()),
            requests=sum(state.requests.values()),
            tokens=state.total_tokens,
            cost=self.cost(),
        )

    # --------------------------------------------------------------- budget
    @staticmethod
    def price_table(config: RunConfig) -> PriceTable:
        """Shipped prices < ``budget.prices_file`` < inline ``budget.prices``."""
        inline = {
            model: Price(**price.model_dump()) for model, price in config.budget.prices.items()
        }
        return load_prices(config.budget.prices_file, inline)

    @staticmethod
    def run_cost(out: Path, prices: PriceTable) -> float | None:
        """USD a run directory's requests cost, or None if a model used has no price."""
        return _cost(load_state(out, repair=False).usage_by_model, prices)

    def cost(self) -> float | None:
        """USD spent so far over all sessions, or None if some model used has no price."""
        return _cost(self.store.state.usage_by_model, self.prices)

    def _check_prices(self) -> None:
        """A cost cap needs a price for every teacher model (and for models used earlier)."""
        if self.config.budget.max_cost_usd is None:
            return
        models = {t.model for t in self.teachers.values()} | set(self.store.state.usage_by_model)
        unpriced = sorted(model for model in models if self.prices.lookup(model) is None)
        if unpriced:
            raise InputError(
                f"--max-cost needs a price for model {unpriced[0]!r}: add it to budget.prices "
                "in the config (input/output USD per 1M tokens) or to budget.prices_file",
                field="budget.max_cost_usd",
            )

    def _budget_reached(self) -> str | None:
        budget = self.config.budget
        tokens = self.store.state.total_tokens
        if budget.max_tokens is not None and tokens >= budget.max_tokens:
            return f"token budget reached: {tokens:,} of max {budget.max_tokens:,}"
        if budget.max_cost_usd is not None:
            cost = self.cost() or 0.0  # every model has a price: _check_prices made sure
            if cost >= budget.max_cost_usd:
                return f"cost budget reached: ${cost:.4f} of max ${budget.max_cost_usd:.4f}"
        return None

    # ------------------------------------------------------------- stage 1
    async def _generate_instructions(self, jobs: set[asyncio.Task[None]]) -> None:
        number = self.store.state.next_request
        self.store.state.next_request += 1
        rng = random.Random(f"{self.config.seed}:instructions:{number}")
        machine = [row.instruction for row in self.store.state.instructions]
        demos = instructions.sample_demos(
            rng,
            self.seed_texts,
            machine,
            self.config.num_seed_demos,
            self.config.num_machine_demos,
        )
        completion = await self._call("instructions", self.stage1.request(demos, rng))
        candidates = self.stage1.parse(completion)
        rejections: list[Rejection] = []
        if not candidates:
            rejections.append(
                Rejection(
                    stage="instructions",
                    reason="unparseable",
                    candidate=completion.text[:1000],
                    request=number,
                    details={"finish_reason": completion.finish_reason},
                )
            )
        kept = 0
        for text in candidates:
            drop, score, nearest = self._judge_instruction(text)
            if drop is not None:
                rejections.append(
                    Rejection(
                        stage="instructions",
                        reason=drop.reason,
                        candidate=text,
                        request=number,
                        details=drop.details,
                    )
                )
                continue
            row = Instruction(
                id=f"i{len(self.store.state.instructions):06d}",
                instruction=text,
                request=number,
                model=completion.model or self.teachers["instructions"].model,
                max_rouge=score,
                most_similar=nearest,
            )
            self._remember(text)
            self.store.add_instruction(row)
            jobs.add(asyncio.create_task(self._expand(row)))
            kept += 1
        self.store.add_rejections(rejections)
        self._fruitless_requests = 0 if kept else self._fruitless_requests + 1
        if self._fruitless_requests >= MAX_FRUITLESS_REQUESTS:
            self._stop_reason = (
                f"{MAX_FRUITLESS_REQUESTS} stage-1 requests in a row kept no instruction; "
                "see rejected.jsonl for why (a weak teacher or too strict filters)"
            )
            self._stop.set()
        self._show_progress()

    def _judge_instruction(self, text: str) -> tuple[Drop | None, float, str | None]:
        """Heuristics first (cheap), then ROUGE-L novelty against seeds and kept instructions."""
        drop = first_drop(self.filters, text)
        score, position = self.index.most_similar(text)
        nearest = self.index.text(position) if position >= 0 else None
        if drop is None and score > self.config.filters.rouge_threshold:
            drop = Drop("rouge_similar", {"score": score, "most_similar": nearest})
        return drop, score, nearest

    # --------------------------------------------------------- stages 2, 3
    async def _expand(self, row: Instruction) -> None:
        """Classify, write inputs, answer them, filter, and write the job's rows together."""
        rng = random.Random(f"{self.config.seed}:expand:{row.id}")
        demos = self.demos["classify"]
        completion = await self._call(
            "classify", self.classifier.request(row.instruction, demos, rng)
        )
        is_classification = bool(self.classifier.parse(completion))

        demos = self.demos["output_first" if is_classification else "input_first"]
        request = self.inputs.request(row.instruction, is_classification, demos, rng)
        completion = await self._call("inputs", request)
        drafts = self.inputs.parse(completion, is_classification)

        rejections: list[Rejection] = []
        if not drafts:
            rejections.append(
                self._instance_rejection(row, "inputs", "unparseable", completion.text)
            )
        instances, answer_stage = await self._answer(row, drafts, rng, rejections)
        kept, dropped = filter_instances(instances, self.config.filters)
        for instance, drop in dropped:
            rejections.append(
                self._instance_rejection(
                    row, answer_stage, drop.reason, _render(instance), drop.details
                )
            )
        if self._done() >= self.config.num_instructions:
            return  # the target was reached meanwhile: leave this instruction pending
        examples = [
            Example(
                id=f"{row.id}-{number}",
                instruction_id=row.id,
                instruction=row.instruction,
                input=instance.input,
                output=instance.output,
                is_classification=is_classification,
                provenance=self._provenance(is_classification),
            )
            for number, instance in enumerate(kept)
        ]
        if not examples:
            rejections.append(self._instance_rejection(row, answer_stage, NO_VALID_INSTANCES, ""))
        self.store.add_examples(examples)
        self.store.add_rejections(rejections)
        self._show_progress()

    async def _answer(
        self,
        row: Instruction,
        drafts: list[inputs.Draft],
        rng: random.Random,
        rejections: list[Rejection],
    ) -> tuple[list[Instance], Stage]:
        """Stage 3 for drafts without an output (input-first); output-first drafts pass through."""
        if all(draft.output is not None for draft in drafts):
            return [Instance(input=d.input, output=d.output or "") for d in drafts], "inputs"
        demos = self.demos["outputs"]
        requests = [
            self.answers.request(row.instruction, draft.input, demos, rng) for draft in drafts
        ]
        completions = await asyncio.gather(*(self._call("outputs", r) for r in requests))
        instances = []
        for draft, completion in zip(drafts, completions, strict=True):
            text, problem = self.answers.parse(completion)
            if problem is not None:
                candidate = _render(Instance(input=draft.input, output=text))
                rejections.append(self._instance_rejection(row, "outputs", problem, candidate))
                continue
            instances.append(Instance(input=draft.input, output=text))
        return instances, "outputs"

    def _instance_rejection(
        self,
        row: Instruction,
        stage: Stage,
        reason: str,
        candidate: str,
        details: dict[str, object] | None = None,
    ) -> Rejection:
        return Rejection(
            stage=stage,
            reason=reason,
            candidate=candidate[:2000],
            instruction_id=row.id,
            details={"instruction": row.instruction, **(details or {})},
        )

    def _provenance(self, is_classification: bool) -> Provenance:
        variant = "inputs.output_first" if is_classification else "inputs.input_first"
        models = {stage: teacher.model for stage, teacher in self.teachers.items()}
        if is_classification:
            models.pop("outputs", None)
        prompts = {
            "instructions": self.prompts.sha("instructions"),
            "classify": self.prompts.sha("classify"),
            "inputs": self.prompts.sha(variant),
        }
        if not is_classification:
            prompts["outputs"] = self.prompts.sha("outputs")
        return Provenance(models=models, prompts=prompts)

    # ------------------------------------------------------------- shutdown
    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_signal, signum)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        self._stop_reason = f"interrupted by {name}"
        self._failure = Interrupted(
            f"interrupted by {name} at {self._done()}/{self.config.num_instructions} "
            f"instructions; everything written is kept. Resume: run the same command "
            f"again with --out {self.out}"
        )
        self._stop.set()

    async def _shutdown(self) -> None:
        for teacher in {id(t): t for t in self.teachers.values()}.values():
            with contextlib.suppress(Exception):
                await teacher.aclose()

    def _endpoint_stats(self) -> dict[str, dict[str, object]]:
        """Per-endpoint counters of the teachers that have them (never a key)."""
        stats: dict[str, dict[str, object]] = {}
        for teacher in {id(t): t for t in self.teachers.values()}.values():
            report = getattr(teacher, "endpoint_stats", None)
            if callable(report):
                stats.update(report())
        return stats

    def _write_manifest(self, status: str, elapsed: float | None = None) -> None:
        state = self.store.state
        previous = read_manifest(self.out)
        timings = dict(previous.timings_s) if previous else {}
        if elapsed is not None:
            timings["total"] = timings.get("total", 0.0) + elapsed
            timings["last_session"] = elapsed
        manifest = Manifest(
            tool_version=__version__,
            created_at=self.created_at,
            updated_at=_now(),
            status=status,  # type: ignore[arg-type]
            config=self.config.redacted(),
            fingerprint=self.fingerprint,
            package_versions=package_versions(),
            counts=Counts(
                instructions_kept=len(state.instructions),
                instructions_done=self._done(),
                examples=len(state.example_ids),
                rejected=sum(state.rejected_by_reason.values()),
                rejected_by_reason=dict(sorted(state.rejected_by_reason.items())),
                requests=dict(state.requests),
            ),
            usage=dict(state.usage),
            cost_usd=self.cost(),
            endpoints=self._endpoint_stats(),
            timings_s=timings,
            stop_reason=self._stop_reason,
        )
        self.store.write_manifest(manifest)


def _cost(usage_by_model: dict[str, Usage], prices: PriceTable) -> float | None:
    total = 0.0
    for model, usage in usage_by_model.items():
        cost = prices.cost(model, usage.prompt_tokens, usage.completion_tokens)
        if cost is None:
            return None
        total += cost
    return total


def _check_seed_count(config: RunConfig, seeds: list[SeedTask]) -> None:
    if len(seeds) < config.num_seed_demos:
        raise InputError(
            f"the seed set has {len(seeds)} tasks but each request shows "
            f"{config.num_seed_demos} seed demonstrations; add seeds or lower num_seed_demos",
            path=config.seeds,
        )


def _render(instance: Instance) -> str:
    return f"{instance.input} -> {instance.output}" if instance.input else instance.output


def _teacher_note(teachers: dict[Stage, Teacher]) -> str:
    concurrency = min(teacher.max_concurrency for teacher in teachers.values())
    return "serial" if concurrency == 1 else f"x{concurrency}"


def _existing_created_at(out: Path) -> str | None:
    manifest = read_manifest(out)
    return manifest.created_at if manifest else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_pipeline(
    config: RunConfig, out: Path, *, force: bool = False, quiet: bool = True
) -> RunResult:
    """Synchronous entry point for the library API and the CLI."""
    return asyncio.run(Pipeline(config, out, force=force, quiet=quiet).run())
