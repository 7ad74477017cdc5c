"""The sections of a run's config that stages and filters read: sampling, each stage's
section (``stages.<name>``) and the filters. :mod:`selfinstruct.config` puts them together
into :class:`~selfinstruct.config.RunConfig`.

A new stage that needs settings of its own adds its section class here (a subclass of
:class:`StageConfig`) and a field on :class:`StagesConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from selfinstruct.teachers.choice import TeacherConfig

# The paper's keyword blacklist plus Alpaca's additions (video, audio, music, flowchart, diagram).
DEFAULT_BLACKLIST = [
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
    "map", "maps", "draw", "plot", "go to",
    "video", "audio", "music", "flowchart", "diagram",
]  # fmt: skip


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SamplingConfig(Section):
    """Sampling for one stage; ``None`` means the prompt file's front matter decides."""

    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature, 0 to 2."
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="Nucleus sampling: keep this probability mass."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Most tokens one completion may have."
    )
    stop: list[str] | None = Field(default=None, description="Strings that end a completion.")


class StageConfig(Section):
    """Per-stage prompt file, sampling and (optionally) a teacher different from the default."""

    prompt: Path | None = Field(
        default=None, description="Prompt template file (default: the shipped one for the API)."
    )
    sampling: SamplingConfig = Field(
        default_factory=SamplingConfig,
        description="Sampling for this stage; unset fields come from the template's front matter.",
    )
    teacher: TeacherConfig | None = Field(
        default=None,
        description="This stage's teacher: fields set here are laid over the default teacher.",
    )


StructuredMode = Literal["auto", "on", "off"]


class StructuredStageConfig(StageConfig):
    """A stage that can ask a chat teacher for JSON following a schema (structured outputs)
    instead of parsing free text."""

    structured: StructuredMode = Field(
        default="auto",
        description="Ask for JSON following a schema: auto (when the teacher uses the chat "
        "API and honours schemas), on (always on chat), off (free text).",
    )
    structured_prompt: Path | None = Field(
        default=None,
        description="Template for structured mode (default: the shipped *.structured.txt).",
    )

    @field_validator("structured", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: object) -> object:
        """YAML reads a bare ``on``/``off`` as a boolean."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class InstructionsStageConfig(StructuredStageConfig):
    """Stage 1 may ask for several replies to one prompt (``n``) where the server honours it."""

    samples: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Replies asked for per stage-1 request (n): the prompt is paid once for "
        "all of them; a server that ignores n sends one.",
    )


class InputsStageConfig(StructuredStageConfig):
    """Stage 2 has two templates: ``prompt`` (input-first) and ``output_first_prompt``
    (classification tasks: a label, then an input)."""

    output_first_prompt: Path | None = Field(
        default=None,
        description="Template for classification tasks: a label, then an input.",
    )
    structured_output_first_prompt: Path | None = Field(
        default=None,
        description="Template for classification tasks in structured mode.",
    )


#: Evol-Instruct's rewritings: five in depth, one in breadth (a new task in the same domain)
EvolveOperation = Literal[
    "constraints", "deepen", "concretize", "reasoning", "complicate_input", "breadth"
]
EVOLVE_OPERATIONS: tuple[EvolveOperation, ...] = (
    "constraints", "deepen", "concretize", "reasoning", "complicate_input", "breadth"
)  # fmt: skip


class EvolveStageConfig(StageConfig):
    """Evol-Instruct: rewrite each instruction that got examples, one operation per round."""

    enabled: bool = Field(default=False, description="Evolve kept instructions (Evol-Instruct).")
    rounds: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Evolution rounds: an evolved instruction is evolved again until this round.",
    )
    operations: list[EvolveOperation] = Field(
        default_factory=lambda: list(EVOLVE_OPERATIONS),
        min_length=1,
        description="Operations drawn from (one per instruction and round): "
        + ", ".join(EVOLVE_OPERATIONS)
        + ".",
    )


class ParaphraseStageConfig(StageConfig):
    """Paraphrase expansion: k rewordings of an instruction that share its instances."""

    enabled: bool = Field(default=False, description="Add paraphrases of each instruction.")
    k: int = Field(default=3, ge=1, le=10, description="Paraphrases asked for per instruction.")
    rouge_threshold: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Drop a paraphrase whose ROUGE-L F against the instruction or another kept "
        "paraphrase of it is above this (looser than the novelty rule on purpose).",
    )


class InvertStageConfig(StageConfig):
    """Inversion: a new task that produces an example's input from its output."""

    enabled: bool = Field(default=False, description="Add the inverted task of an example.")


class OutputsStageConfig(StageConfig):
    """Stage 3 may sample several outputs per input, for the judge to rank (preference data)."""

    samples: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Outputs sampled per input: one request with n where the server honours "
        "it, else one request each; the judge ranks them and the best becomes the output.",
    )


class JudgeStageConfig(StageConfig):
    """The LLM judge after stage 3 (off by default): rates each output 1-10 on the rubric in
    its prompt file and drops examples rated below min_score."""

    enabled: bool = Field(default=False, description="Rate every output with an LLM judge.")
    min_score: int = Field(
        default=6,
        ge=1,
        le=10,
        description="Drop an example whose best output the judge rates below this (1-10).",
    )


class StagesConfig(Section):
    """One section a stage. A stage added to the sequence (not built in) gets its section
    under its own name; a section naming no stage of the run is refused when the run starts."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    __pydantic_extra__: dict[str, StageConfig] = Field(init=False)

    instructions: InstructionsStageConfig = Field(default_factory=InstructionsStageConfig)
    classify: StructuredStageConfig = Field(default_factory=StructuredStageConfig)
    inputs: InputsStageConfig = Field(default_factory=InputsStageConfig)
    evolve: EvolveStageConfig = Field(default_factory=EvolveStageConfig)
    paraphrase: ParaphraseStageConfig = Field(default_factory=ParaphraseStageConfig)
    invert: InvertStageConfig = Field(default_factory=InvertStageConfig)
    outputs: OutputsStageConfig = Field(default_factory=OutputsStageConfig)
    judge: JudgeStageConfig = Field(default_factory=JudgeStageConfig)

    def get(self, stage: str) -> StageConfig:
        if stage in type(self).model_fields:
            return getattr(self, stage)
        return (self.__pydantic_extra__ or {}).get(stage) or StageConfig()

    def extra_sections(self) -> list[str]:
        return sorted(self.__pydantic_extra__ or {})


class FilterConfig(Section):
    """Stage-1 heuristics and the ROUGE-L novelty rule (reject iff max F > threshold)."""

    rouge_threshold: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Drop an instruction whose ROUGE-L F against a kept one is above this.",
    )
    rouge_nearest_floor: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A kept instruction's max_rouge and most_similar are exact when above this "
        "(else a lower bound); at rouge_threshold that search is skipped (about 3x less ROUGE-L "
        "CPU; kept rows then say 0.0). Decisions do not depend on it.",
    )
    min_words: int = Field(default=4, ge=1, description="Drop instructions with fewer words.")
    max_words: int = Field(default=150, ge=1, description="Drop instructions with more words.")
    blacklist: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLACKLIST),
        description="Drop instructions with one of these words (tasks a text model cannot do).",
    )
    banned_prefixes: list[str] = Field(
        default_factory=lambda: ["Write a program"],
        description="Drop instructions starting with one of these (case-insensitive).",
    )
    placeholder_outputs: list[str] = Field(
        default_factory=lambda: ["n/a", "na", "none", "null", "nan", "-", "...", "<nooutput>"],
        description="Drop instances whose whole output is one of these (case-insensitive).",
    )
