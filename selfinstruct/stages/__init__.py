"""The stages: stage 1 writes instructions; each kept one then runs the declared sequence.

Adding a stage is one file here (a class with the shape in :mod:`selfinstruct.stages.base`),
one template in ``prompts/`` and one entry in :data:`DEFAULT_SEQUENCE` (or a sequence handed
to the pipeline); its settings live under ``stages.<name>`` in the run config. Optional
stages join the sequence when their section enables them (:data:`OPTIONAL_STAGES`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfinstruct.config import RunConfig
from selfinstruct.config_sections import StageConfig
from selfinstruct.errors import InputError
from selfinstruct.prompts import PromptTemplate, default_prompt_path, load_template
from selfinstruct.records import SeedTask
from selfinstruct.stages.base import Job, Round, Stage, StageContext, StageMode, StagePrompt
from selfinstruct.stages.classify import ClassifyStage
from selfinstruct.stages.evolve import EvolveStage
from selfinstruct.stages.inputs import InputStage
from selfinstruct.stages.instructions import InstructionStage
from selfinstruct.stages.invert import InvertStage
from selfinstruct.stages.judge import JudgeStage
from selfinstruct.stages.outputs import OutputStage
from selfinstruct.stages.paraphrase import ParaphraseStage
from selfinstruct.stages.structured import reply_schema
from selfinstruct.teachers.base import Api

#: what every kept instruction goes through, in order
DEFAULT_SEQUENCE: tuple[type[Stage[Job]], ...] = (ClassifyStage, InputStage, OutputStage)
#: the augmentation stages (off by default)
DERIVATION_SEQUENCE: tuple[type[Stage[Job]], ...] = (EvolveStage, ParaphraseStage, InvertStage)

#: appended to the sequence, each when ``stages.<name>.enabled`` is true, in this order: the
#: judge first (it sees only instances that passed the instance filters), then the derivation
#: stages, which write derived instructions (:mod:`selfinstruct.stages.derived`) from what the
#: judge kept
OPTIONAL_STAGES: tuple[type[Stage[Job]], ...] = (JudgeStage, *DERIVATION_SEQUENCE)

__all__ = [
    "DEFAULT_SEQUENCE",
    "DERIVATION_SEQUENCE",
    "OPTIONAL_STAGES",
    "Job",
    "Round",
    "Stage",
    "Stages",
    "build_stages",
    "enabled_sequence",
]


@dataclass(frozen=True)
class Stages:
    """Stage 1, the sequence after it, and every template they loaded (for the fingerprint)."""

    first: InstructionStage
    sequence: tuple[Stage[Job], ...]
    templates: dict[str, PromptTemplate]
    #: per stage with a structured mode: whether it asks for JSON or free text
    modes: dict[str, StageMode] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [self.first.name] + [stage.name for stage in self.sequence]

    def choose_modes(self, schema_style: Callable[[str], str | None]) -> None:
        """Decide each ``auto`` stage's mode from the JSON-schema form its teacher honours
        (``schema_style(stage)``; None: none), once the teachers have started."""
        for name, mode in self.modes.items():
            mode.choose(schema_style(name))

    def mode_names(self) -> dict[str, str]:
        """``{stage: "structured" | "text"}`` for the manifest."""
        return {name: mode.name for name, mode in self.modes.items()}


def build_stages(
    config: RunConfig,
    seeds: list[SeedTask],
    api_for: Callable[[str], Api],
    sequence: Sequence[type[Stage[Job]]] = DEFAULT_SEQUENCE,
) -> Stages:
    """Load every stage's templates (the configured file or the API's default) and build it.

    ``api_for(stage_name)`` says which API the stage's teacher speaks. Demonstrations fixed
    per run are drawn from one RNG seeded by ``config.seed``, stage by stage in order.
    Enabled optional stages are appended to ``sequence`` (:func:`enabled_sequence`).
    """
    sequence = enabled_sequence(config, sequence)
    _check_sections(config, [InstructionStage.name] + [cls.name for cls in sequence])
    demo_rng = random.Random(f"{config.seed}:demos")
    templates: dict[str, PromptTemplate] = {}
    modes: dict[str, StageMode] = {}

    def build(cls: Any) -> Any:
        api = api_for(cls.name)
        settings = config.stages.get(cls.name)
        mode = stage_mode(cls, settings, api)
        prompts = _load_prompts(cls, settings, api, with_structured=mode.available)
        templates.update({bound.name: bound.template for bound in prompts.values()})
        if any(template.structured for template in cls.templates):
            modes[cls.name] = mode
        return cls(StageContext(config, settings, prompts, seeds, demo_rng, mode))

    first = build(InstructionStage)
    built = tuple(build(cls) for cls in sequence)
    return Stages(first=first, sequence=built, templates=templates, modes=modes)


def enabled_sequence(
    config: RunConfig, sequence: Sequence[type[Stage[Job]]]
) -> tuple[type[Stage[Job]], ...]:
    """``sequence`` plus each optional stage whose section says ``enabled: true``."""
    extra = [
        cls
        for cls in OPTIONAL_STAGES
        if cls not in sequence and getattr(config.stages.get(cls.name), "enabled", False)
    ]
    return (*sequence, *extra)


def stage_mode(cls: Any, settings: StageConfig, api: Api) -> StageMode:
    """The stage's structured setting; ``on`` is decided here, ``auto`` when teachers start.
    Structured outputs need the chat API: ``on`` with a completions teacher is an error."""
    setting = getattr(settings, "structured", "off")
    has_templates = any(template.structured for template in cls.templates)
    if setting == "on" and api != "chat":
        raise InputError(
            "structured outputs need a teacher on the chat API (this stage's uses completions)",
            path="config",
            field=f"stages.{cls.name}.structured",
        )
    available = has_templates and api == "chat" and setting != "off"
    return StageMode(setting, available, structured=available and setting == "on")


def _load_prompts(
    cls: Any, settings: StageConfig, api: Api, *, with_structured: bool
) -> dict[str, StagePrompt]:
    prompts = {}
    for template in cls.templates:
        if template.structured and not with_structured:
            continue
        configured: Path | None = getattr(settings, template.field, None)
        path = configured or default_prompt_path(template.name, api)
        prompts[template.field] = StagePrompt(
            stage=cls.name,
            name=template.name,
            template=load_template(path, set(template.placeholders)),
            api=api,
            sampling=settings.sampling,
            schema=reply_schema(template.reply) if template.reply is not None else None,
        )
    return prompts



def _check_sections(config: RunConfig, names: list[str]) -> None:
    """A ``stages.<name>`` section for a stage that is not in the sequence is a typo."""
    for name in config.stages.extra_sections():
        if name not in names:
            raise InputError(
                f"unknown stage (the stages are: {', '.join(names)})",
                path="config",
                field=f"stages.{name}",
            )
