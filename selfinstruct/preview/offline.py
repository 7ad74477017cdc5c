"""``selfinstruct preview`` without a teacher: validate a run's inputs and render one request
of every stage, exactly as the run would build it.

Stage 1 renders its first request (round 0). Every later stage of the sequence (whatever
:func:`selfinstruct.stages.build_stages` builds, so a stage added to the sequence appears by
itself) renders on a *stand-in job*: a seed task taken as if stage 1 had written it. A stage
renders on the least complete state of that job, no less complete than the previous stage's,
for which it has something to send:

1. the instruction alone (its classification flag from the seed task);
2. plus drafts holding the seed's inputs (and, for a classification task, its labels);
3. plus every draft's output from the seed.

So classification and stage 2 render on state 1, stage 3 on state 2 and a stage that reads
answers (a judge) on state 3, without preview knowing any stage by name. Every stage is also
rendered for a stand-in of the other kind (classification or not), so both of stage 2's
templates are rendered once; a template that fails to render is an :class:`InputError`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.config import RunConfig
from selfinstruct.errors import InputError
from selfinstruct.records import Instruction, SeedTask
from selfinstruct.run.budget import price_table
from selfinstruct.seeds import check_seed_count, load_seeds
from selfinstruct.stages import DEFAULT_SEQUENCE, Job, Round, Stage, Stages, build_stages
from selfinstruct.stages.base import Draft
from selfinstruct.teachers.base import Request
from selfinstruct.teachers.model_file import EMBEDDED_MODEL_NAME

#: the stand-in job's states, least complete first (see the module docstring)
JOB_STATES = ("instruction", "inputs", "outputs")


@dataclass(frozen=True)
class TeacherLine:
    """Who answers one stage: backend, model (None: discovered at start), API, endpoints,
    and the model's price (USD per 1M input/output tokens; None: not in the price table)."""

    kind: str
    model: str | None
    api: str
    base_urls: tuple[str, ...]
    price: tuple[float, float] | None


@dataclass(frozen=True)
class StagePreview:
    """One stage's rendered requests (all of them; the first is the one shown), the stand-in
    state it rendered on, its template files and its teacher."""

    name: str
    requests: tuple[Request, ...]
    state: str
    templates: tuple[Path, ...]
    teacher: TeacherLine


@dataclass
class Preview:
    """What ``selfinstruct preview`` found: the validated inputs and one request per stage."""

    config: RunConfig
    seeds: list[SeedTask]
    stand_in: SeedTask
    stages: list[StagePreview]
    built: Stages = field(repr=False)
    notes: list[str] = field(default_factory=list)


def preview_config(
    config: RunConfig,
    sequence: Sequence[type[Stage[Job]]] = DEFAULT_SEQUENCE,
    *,
    task: str | None = None,
) -> Preview:
    """Validate ``config``'s seeds, prompts and price table, and render one request of every
    stage. ``task`` picks the stand-in seed task by id (default: the first one that is not a
    classification task). Raises :class:`InputError` on the first problem; calls no teacher."""
    seeds = load_seeds(config.seeds)
    check_seed_count(seeds, config.num_seed_demos, config.seeds)
    stages = build_stages(config, seeds, lambda name: config.teacher_for(name).api, sequence)
    prices = price_table(config)
    teachers = {name: _teacher_line(config, name, prices) for name in stages.names}
    notes = _price_notes(config, teachers)
    stand_in = _stand_in(seeds, task, config.seeds)
    round_ = Round(0, random.Random(f"{config.seed}:instructions:0"), machine_pool=[])
    first = stages.first
    shown = [
        StagePreview(
            first.name, tuple(_render(first, round_, first.name)), "round 0",
            _paths(stages, first), teachers[first.name],
        )
    ]  # fmt: skip
    shown += render_sequence(stages, stand_in, config.seed, teachers)
    other = next((s for s in seeds if s.is_classification != stand_in.is_classification), None)
    if other is not None:
        render_sequence(stages, other, config.seed, teachers)  # both stage-2 layouts render
    return Preview(config, seeds, stand_in, shown, stages, notes)


def render_sequence(
    stages: Stages, task: SeedTask, seed: int, teachers: dict[str, TeacherLine]
) -> list[StagePreview]:
    """Every sequence stage's requests for ``task`` as a stand-in job (see the module doc)."""
    shown = []
    level = 0
    rng = random.Random(f"{seed}:expand:preview:{task.id}")  # one job's RNG, as in a run
    for stage in stages.sequence:
        requests: list[Request] = []
        for candidate in range(level, len(JOB_STATES)):
            requests = _render(stage, stand_in_job(task, rng, candidate), stage.name)
            if requests:
                level = candidate
                break
        state = JOB_STATES[level] if requests else "nothing to send for this stand-in"
        paths = _paths(stages, stage)
        shown.append(StagePreview(stage.name, tuple(requests), state, paths, teachers[stage.name]))
    return shown


def stand_in_job(task: SeedTask, rng: random.Random, level: int) -> Job:
    """``task`` as a job at state ``JOB_STATES[level]``, drawing request seeds from ``rng``."""
    row = Instruction(
        id=f"preview:{task.id}", instruction=task.instruction, request=0, model="", max_rouge=0.0
    )
    job = Job(
        instruction=row,
        rng=rng,
        is_classification=task.is_classification,
    )
    if level >= 1:
        job.drafts = [
            Draft(
                input=instance.input,
                output=instance.output if task.is_classification or level >= 2 else None,
            )
            for instance in task.instances
        ]
    return job


def _render(stage: Stage[Any], job: Any, name: str) -> list[Request]:
    try:
        return list(stage.requests(job))
    except InputError:
        raise
    except Exception as exc:  # a template that loads but fails to render (jinja2 errors)
        files = ", ".join(str(t.template.path) for t in getattr(stage, "prompts", {}).values())
        where = f" ({files})" if files else ""
        raise InputError(
            f"a template failed to render{where}: {type(exc).__name__}: {exc}",
            field=f"stages.{name}",
        ) from None


def _paths(stages: Stages, stage: Any) -> tuple[Path, ...]:
    """The template files a stage loaded (its ``templates`` names in ``stages.templates``)."""
    return tuple(
        stages.templates[t.name].path for t in stage.templates if t.name in stages.templates
    )


def _stand_in(seeds: list[SeedTask], task: str | None, path: Path) -> SeedTask:
    if task is not None:
        found = next((s for s in seeds if s.id == task), None)
        if found is None:
            raise InputError(f"no seed task with id {task!r}", path=path, field="--task")
        if not found.instances:
            raise InputError(f"seed task {task!r} has no instances", path=path, field="--task")
        return found
    with_instances = [s for s in seeds if s.instances]
    if not with_instances:
        raise InputError("no seed task has an instance to stand in for stage 2", path=path)
    return next((s for s in with_instances if not s.is_classification), with_instances[0])


def _teacher_line(config: RunConfig, stage: str, prices: Any) -> TeacherLine:
    teacher = config.teacher_for(stage)
    urls = getattr(teacher, "base_url", None) or []
    model = teacher.model
    if model is None and teacher.kind == "local":  # the embedded model, or the file's name
        path = getattr(teacher, "model_path", None)
        model = Path(path).stem if path is not None else EMBEDDED_MODEL_NAME
    price = prices.lookup(model) if model else None
    return TeacherLine(
        kind=teacher.kind,
        model=model,
        api=teacher.api,
        base_urls=tuple([urls] if isinstance(urls, str) else urls),
        price=None if price is None else (price.input, price.output),
    )


def _price_notes(config: RunConfig, teachers: dict[str, TeacherLine]) -> list[str]:
    """A cost cap needs a price for every named model (as the run would refuse); models left
    to discovery are checked when the run starts."""
    notes = []
    for stage, line in teachers.items():
        if line.model is None:
            notes.append(f"{stage}: the model is discovered when the run starts")
        elif line.price is None:
            if config.budget.max_cost_usd is not None:
                raise InputError(
                    f"--max-cost needs a price for model {line.model!r}: add it to "
                    "budget.prices in the config (input/output USD per 1M tokens) or to "
                    "budget.prices_file",
                    field="budget.max_cost_usd",
                )
            notes.append(f"{stage}: model {line.model!r} has no price: its cost shows as unknown")
    return list(dict.fromkeys(notes))
