"""The one shape every stage has: render templates into requests, parse replies into the job.

A stage is a class in its own file with

* ``name``: its config section (``stages.<name>``), its name in provenance and request logs;
* ``templates``: the template files it renders (config field, default file, placeholders);
* ``requests(job)``: zero or more :class:`Request` objects for this job;
* ``parse(job, completions)``: read the replies (in request order) into the job.

It is built once per run from a :class:`StageContext` (its settings, its bound templates, the
seed tasks, a seeded RNG for fixed demonstrations). Stage 1 works on a :class:`Round` (one
request for new instructions); every later stage works on a :class:`Job` (one kept
instruction on its way to examples), and the pipeline runs them in their declared sequence.
Stages know nothing of HTTP, files or filters: the pipeline sends their requests and keeps
the records.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel

from selfinstruct.config import RunConfig
from selfinstruct.config_sections import SamplingConfig, StageConfig
from selfinstruct.prompts import PromptTemplate
from selfinstruct.records import (
    Candidate,
    Example,
    Instance,
    Instruction,
    JudgeScore,
    Provenance,
    Rejection,
    SeedTask,
)
from selfinstruct.stages.derived import Derived
from selfinstruct.teachers.base import Api, Completion, Request, ResponseSchema

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Template:
    """A template a stage renders: the ``stages.<name>`` field that may name a user file,
    the default file's name (also its key in fingerprints and provenance), and the
    placeholders the stage provides to it."""

    field: str
    name: str
    placeholders: frozenset[str]
    #: set for a structured-mode template: the reply's model, whose JSON schema the request
    #: carries; such a template is loaded only where the stage may ask for JSON (chat API,
    #: ``stages.<name>.structured`` not ``off``)
    reply: type[BaseModel] | None = None

    @property
    def structured(self) -> bool:
        return self.reply is not None


@dataclass(frozen=True)
class StagePrompt:
    """A loaded template bound to the teacher's API and the configured sampling."""

    stage: str
    name: str
    template: PromptTemplate
    api: Api
    sampling: SamplingConfig
    #: the JSON schema its requests carry (structured-mode templates only)
    schema: ResponseSchema | None = None

    @property
    def sha(self) -> str:
        """The short content hash recorded in provenance."""
        return self.template.sha256[:16]

    def request(self, seed: int | None = None, **values: Any) -> Request:
        request = self.template.request(self.stage, self.api, self.sampling, seed=seed, **values)
        return request if self.schema is None else replace(request, response_schema=self.schema)


@dataclass
class StageMode:
    """Whether a stage asks for JSON following a schema (``structured``) or free text.

    ``setting`` is ``stages.<name>.structured``; ``available`` says its structured templates
    were loaded (chat API, setting not ``off``). ``on`` decides at once; ``auto`` is decided
    by :meth:`choose` once the teacher has probed its server."""

    setting: str = "off"
    available: bool = False
    structured: bool = False
    #: the JSON-schema form the teacher honours, as found when the mode was chosen
    style: str | None = None

    def choose(self, schema_style: str | None) -> None:
        """Decide from the form of JSON schema the teacher honours (None: none)."""
        wanted = self.setting == "on" or (self.setting == "auto" and schema_style is not None)
        self.structured, self.style = self.available and wanted, schema_style

    @property
    def name(self) -> str:
        return "structured" if self.structured else "text"


@dataclass(frozen=True)
class StageContext:
    """What a stage is built from, once per run."""

    config: RunConfig
    settings: StageConfig
    prompts: dict[str, StagePrompt]  # by Template.field
    seeds: list[SeedTask]
    demo_rng: random.Random
    mode: StageMode = field(default_factory=StageMode)


@dataclass
class Sampling:
    """Stage 3's count of the replies it asked and got for one draft (``samples`` > 1)."""

    received: int = 0
    awaiting: int = 0  # requests sent in the current round
    missing: int = 0  # samples still to ask, one request each (the server ignored ``n``)
    topped_up: bool = False


@dataclass
class Draft:
    """An instance under construction: ``output`` stays None until a stage writes it.

    With several sampled outputs, ``candidates`` holds them (distinct, in reply order;
    ``output`` is one of them); the judge writes ``judge`` (its rating of ``output``) and
    ``ranked`` (every candidate with its rating, best first).
    """

    input: str
    output: str | None = None
    candidates: list[str] = field(default_factory=list)
    sampling: Sampling | None = None
    judge: JudgeScore | None = None
    ranked: list[Candidate] = field(default_factory=list)


@dataclass
class Round:
    """One stage-1 request: its number, RNG, the kept instructions to draw demos from, and
    what the reply held."""

    number: int
    rng: random.Random
    machine_pool: Sequence[str]
    candidates: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def reject(
        self, stage: str, reason: str, candidate: str, details: dict[str, Any] | None = None
    ) -> None:
        self.rejections.append(
            Rejection(
                stage=stage,
                reason=reason,
                candidate=candidate,
                request=self.number,
                details=details or {},
            )
        )


@dataclass
class Job:
    """One kept instruction going through the stage sequence, and everything it collects."""

    instruction: Instruction
    rng: random.Random
    is_classification: bool = False
    drafts: list[Draft] = field(default_factory=list)
    #: the stage whose replies wrote the drafts' outputs (instance rejections name it)
    answered_by: str = ""
    rejections: list[Rejection] = field(default_factory=list)
    #: provenance: stage -> template sha used, stage -> teacher model, the calls made
    prompts: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    #: what the derivation stages (evolve, paraphrase, invert) wrote, for the run to judge
    derived: list[Derived] = field(default_factory=list)

    def reject(
        self, stage: str, reason: str, candidate: str, details: dict[str, Any] | None = None
    ) -> None:
        self.rejections.append(
            Rejection(
                stage=stage,
                reason=reason,
                candidate=candidate[:2000],
                instruction_id=self.instruction.id,
                details={"instruction": self.instruction.instruction, **(details or {})},
            )
        )

    def drop(self, draft: Draft) -> None:
        """Remove this draft (by identity: two drafts may hold equal text)."""
        self.drafts = [kept for kept in self.drafts if kept is not draft]

    def answered(self) -> list[Instance]:
        """The drafts that have an output, as instances (what the instance filters judge)."""
        drafts = [draft for draft in self.drafts if draft.output is not None]
        return [Instance(input=draft.input, output=draft.output or "") for draft in drafts]

    def examples(self, kept: list[Instance]) -> list[Example]:
        """The job's rows for ``examples.jsonl``, numbered in order, with their provenance."""
        row = self.instruction
        provenance = Provenance(models=self.models, prompts=self.prompts, calls=self.calls)
        drafts = {(draft.input, draft.output): draft for draft in self.drafts}
        examples = []
        for number, instance in enumerate(kept):
            draft = drafts.get((instance.input, instance.output)) or Draft(instance.input)
            examples.append(
                Example(
                    id=f"{row.id}-{number}",
                    instruction_id=row.id,
                    instruction=row.instruction,
                    input=instance.input,
                    output=instance.output,
                    is_classification=self.is_classification,
                    provenance=provenance,
                    judge=draft.judge,
                    candidates=draft.ranked
                    or [Candidate(output=output) for output in draft.candidates],
                )
            )
        return examples


def render_instance(input_text: str, output: str) -> str:
    """An instance as one rejection candidate: ``input -> output``, or the output alone."""
    return f"{input_text} -> {output}" if input_text else output


J = TypeVar("J", contravariant=True)  # Round for stage 1, Job for the rest


class Stage(Protocol[J]):
    """The protocol every stage implements (see the module docstring)."""

    name: ClassVar[str]
    templates: ClassVar[tuple[Template, ...]]

    def requests(self, job: J) -> list[Request]: ...

    def parse(self, job: J, completions: list[Completion]) -> None: ...


def one_line(text: str) -> str:
    """Collapse whitespace (demonstrations are shown one per line, as in the paper)."""
    return _SPACES.sub(" ", text).strip()


def task_demo(task: SeedTask, max_instances: int = 2) -> dict[str, Any]:
    """A seed task as template data: ``instruction``, ``instances`` [{input, output}], flag."""
    return {
        "instruction": one_line(task.instruction),
        "instances": [
            {"input": instance.input.strip(), "output": instance.output.strip()}
            for instance in task.instances[:max_instances]
        ],
        "is_classification": task.is_classification,
    }


def request_seed(rng: random.Random) -> int:
    """A per-request sampling seed drawn from the job's RNG (reproducible on seedable servers)."""
    return rng.randrange(2**31)
