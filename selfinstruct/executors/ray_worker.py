"""What runs on a Ray actor: a job for one kept instruction, with the worker's own teachers.

A :class:`JobWorker` builds the run's stages again from the config and the seed tasks (the
default templates ship with the package; a template file named in the config must be readable
on every node, which :class:`WorkerSpec`'s hashes check) and one
:class:`~selfinstruct.teachers.pool.TeacherPool` of its own, whose async teachers keep many
requests in flight. It writes nothing: the job, its kept instances and its teacher-call rows
go back to the driver in a :class:`JobOutcome`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfinstruct.config import RunConfig
from selfinstruct.errors import CircuitOpen, InputError, TeacherError
from selfinstruct.jobs import JobRunner
from selfinstruct.records import Instance, Instruction, SeedTask, TeacherCall
from selfinstruct.stages import Job, Stage, build_stages
from selfinstruct.teachers.base import Completion, Request, TeacherSettings
from selfinstruct.teachers.pool import TeacherPool


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to run jobs exactly as the driver would."""

    config: RunConfig
    seeds: list[SeedTask]
    sequence: Sequence[type[Stage[Job]]]
    prompt_sha256: Mapping[str, str]
    first: tuple[str, str]
    models: Mapping[str, str]
    #: per structured-capable stage, the JSON-schema form the driver's probe found (None:
    #: text mode); workers skip the probe, so they take the driver's structured modes
    schema_styles: Mapping[str, str | None] = field(default_factory=dict)


def call_namer() -> Callable[[str], str]:
    """Names calls uniquely among those it named: ``base``, then ``base~2``, ``base~3``..."""
    taken: set[str] = set()

    def new_call_id(base: str) -> str:
        ident, attempt = base, 1
        while ident in taken:
            attempt += 1
            ident = f"{base}~{attempt}"
        taken.add(ident)
        return ident

    return new_call_id


def schema_styles(jobs: JobRunner) -> dict[str, str | None]:
    """The driver's chosen JSON-schema forms, per stage of its sequence that has a mode."""
    styles: dict[str, str | None] = {}
    for stage in jobs.sequence:
        if (mode := getattr(stage, "mode", None)) is not None:
            styles[stage.name] = (mode.style or "json_schema") if mode.structured else None
    return styles


@dataclass
class JobOutcome:
    """A finished (or failed) job as it travels back to the driver. ``error`` is the failure
    as (kind, message): ``circuit``, ``teacher`` or ``other``."""

    job: Job
    kept: list[Instance]
    calls: list[TeacherCall]
    node: str
    error: tuple[str, str] | None = None
    worker: str = field(default="")

    def raise_error(self) -> None:
        if self.error is None:
            return
        kind, message = self.error
        if kind == "circuit":
            raise CircuitOpen(message)
        if kind == "teacher":
            raise TeacherError(message)
        raise RuntimeError(f"a job failed on Ray node {self.node}: {message}")


def _without_probe(config: TeacherSettings) -> TeacherSettings:
    """The driver already probed the endpoints; workers skip it."""
    if "probe_capabilities" in type(config).model_fields:
        return config.model_copy(update={"probe_capabilities": False})
    return config


class JobWorker:
    """A Ray actor's state (``ray.remote(JobWorker)``); :meth:`run` is called concurrently."""

    def __init__(self, spec: WorkerSpec) -> None:
        import ray

        config = spec.config
        stages = build_stages(
            config, spec.seeds, lambda name: config.teacher_for(name).api, spec.sequence
        )
        loaded = {name: t.sha256 for name, t in stages.templates.items()}
        changed = sorted(n for n in spec.prompt_sha256 if loaded.get(n) != spec.prompt_sha256[n])
        if changed:
            raise InputError(
                "a Ray worker loaded other prompt templates than the driver ("
                + ", ".join(changed)
                + "): make the template files the config names readable on every node",
                field="stages",
            )
        self.spec = spec
        self.sequence = stages.sequence
        configs = {name: _without_probe(config.teacher_for(name)) for name in stages.names}
        run_dir = Path(tempfile.gettempdir())  # only the Batch API journal uses it
        self.teachers = TeacherPool(configs, run_dir, config.max_consecutive_failures)
        stages.choose_modes(spec.schema_styles.get)
        for name, style in spec.schema_styles.items():
            if style is not None and hasattr(self.teachers[name], "schema_style"):
                self.teachers[name].schema_style = style  # type: ignore[attr-defined]
        self.node = ray.get_runtime_context().get_node_id()
        self.worker = ray.get_runtime_context().get_actor_id() or ""
        self._started: asyncio.Task[None] | None = None

    async def run(self, row: Instruction) -> JobOutcome:
        """Run one instruction's job; a failure comes back in the outcome with its calls."""
        if self._started is None:
            self._started = asyncio.ensure_future(self.teachers.start())
        calls: list[TeacherCall] = []
        new_call_id = call_namer()  # the driver renames an id taken in the run

        async def send(
            stage: str, request: Request, call_id: str, serves: Sequence[str]
        ) -> Completion:
            return await self.teachers.call(stage, request, call_id, serves, calls.append)

        spec, config = self.spec, self.spec.config
        runner = JobRunner(
            spec.first, self.sequence, config.filters, spec.models, config.seed, send, new_call_id
        )
        job = runner.new_job(row)
        try:
            await self._started
            kept = await runner.run(job)
        except CircuitOpen as exc:
            return JobOutcome(job, [], calls, self.node, ("circuit", str(exc)), self.worker)
        except TeacherError as exc:
            return JobOutcome(job, [], calls, self.node, ("teacher", str(exc)), self.worker)
        except Exception as exc:  # reported to the driver, which decides
            error = ("other", f"{type(exc).__name__}: {exc}")
            return JobOutcome(job, [], calls, self.node, error, self.worker)
        return JobOutcome(job, kept, calls, self.node, worker=self.worker)

    def node_id(self) -> str:
        return self.node

    async def aclose(self) -> None:
        await self.teachers.aclose()
