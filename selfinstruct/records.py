"""Every data shape the tool reads or writes, as pydantic models.

One module, so a reader sees the whole vocabulary at once:

    SeedTask ──► (stage 1) ──► Instruction ──► (stages 2, 3) ──► Example
                      └──────────────► Rejection (anything dropped, with its reason)
    TeacherCall: one line per request to a teacher (usage, latency, outcome)
    Manifest:    the run's summary (config, versions, counts, usage, timings)

Every row written to a run directory is one of these models serialised with
``model_dump_json``; every row read back is validated with ``model_validate_json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: a stage's name: the built-in ones below, or any stage added to the sequence
Stage = str
STAGES: tuple[Stage, ...] = (
    "instructions", "classify", "inputs", "outputs", "judge", "evolve", "paraphrase", "invert"
)  # fmt: skip
#: a run's state in its manifest
RunStatus = Literal["running", "complete", "stopped", "failed"]
#: how an instruction or example was made: stage 1, or derived from a kept instruction by
#: Evol-Instruct rewriting, paraphrasing or inversion (``stages.evolve|paraphrase|invert``)
Origin = Literal["self-instruct", "evolve", "paraphrase", "invert"]


class Record(BaseModel):
    """Base for every row: unknown fields are an error, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class Instance(Record):
    """One (input, output) pair of a task; ``input`` is empty for tasks that need none."""

    input: str = ""
    output: str


class SeedTask(Record):
    """A human-written task in the Self-Instruct seed format."""

    id: str
    name: str = ""
    instruction: str
    instances: list[Instance] = Field(default_factory=list)
    is_classification: bool = False

    @field_validator("instruction")
    @classmethod
    def _instruction_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Usage(Record):
    """Token counts as reported by the teacher's API (``usage``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Instruction(Record):
    """A machine-written instruction that passed every stage-1 filter.

    ``request`` is the index of the stage-1 request that produced it; ``max_rouge``
    and ``most_similar`` describe its nearest neighbour among seeds and earlier
    instructions at the moment it was kept.
    """

    id: str
    instruction: str
    request: int
    model: str
    max_rouge: float
    most_similar: str | None = None
    #: the id of the stage-1 call that wrote it (``requests.jsonl``); "" in older runs
    call: str = ""
    #: derived instructions: how it was made, from which instruction (``parent``), in which
    #: evolution round (0 for stage 1) and by which Evol-Instruct operation
    origin: Origin = "self-instruct"
    parent: str | None = None
    round: int = 0
    operation: str | None = None
    #: an inverted instruction's one instance (the parent's output as input, its input as
    #: output): the example is rebuilt from it on resume
    instance: Instance | None = None


class Provenance(Record):
    """Which teacher model and which prompt file (by sha256) produced a row, per stage, and
    the ids of the teacher calls behind it (rows of ``requests.jsonl``), in order."""

    models: dict[str, str] = Field(default_factory=dict)
    prompts: dict[str, str] = Field(default_factory=dict)
    calls: list[str] = Field(default_factory=list)


class JudgeScore(Record):
    """An LLM judge's rating of one output: 1 (useless) to 10 (excellent), why, and by whom."""

    score: int = Field(ge=1, le=10)
    rationale: str = ""
    model: str = ""


class Candidate(Record):
    """One of several outputs sampled for the same (instruction, input), with its rating."""

    output: str
    judge: JudgeScore | None = None


class Example(Record):
    """A final training row: the dataset is ``examples.jsonl``, one of these a line.

    ``judge`` is the judge stage's rating of ``output`` (None when the judge is off);
    ``candidates`` holds every sampled output when ``stages.outputs.samples`` > 1, best
    first (``output`` is the first one), for preference and reward-model exports.
    """

    id: str
    instruction_id: str
    instruction: str
    input: str
    output: str
    is_classification: bool
    provenance: Provenance
    #: how it was made; paraphrase examples keep their parent's ``instruction_id``
    origin: Origin = "self-instruct"
    #: examples sharing instances (a task, its paraphrases, its inversion) share a group, the
    #: parent's instruction id, so a split keeps them together; "" means ``instruction_id``
    group: str = ""
    judge: JudgeScore | None = None
    candidates: list[Candidate] = Field(default_factory=list)


class Rejection(Record):
    """Anything a filter or parser dropped, with the stage, the reason and details.

    ``candidate`` is the dropped text (an instruction, or an instance rendered as
    ``input -> output``); ``instruction_id`` links instance-level rejections to their task.
    """

    stage: Stage
    reason: str
    candidate: str
    instruction_id: str | None = None
    request: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TeacherCall(Record):
    """One request to a teacher: what it cost, how it ended, what it served and its raw text.

    ``id`` is unique within a run (examples list it in ``provenance.calls``); ``serves`` holds
    the instruction ids the call worked for (empty for stage 1, whose instructions name their
    request); ``text`` is the reply exactly as received, before any parsing. Rows written
    before these fields existed load with their defaults.
    """

    id: str = ""
    stage: Stage
    model: str
    usage: Usage
    finish_reason: str | None = None
    latency_s: float
    choices: int = 1
    error: str | None = None
    serves: list[str] = Field(default_factory=list)
    text: str | None = None
    #: the further choices' texts when one request asked for several (``n``)
    more: list[str] = Field(default_factory=list)
    #: answered from the response cache: no request was sent, ``usage`` is zero (nothing
    #: spent) and ``saved`` holds the tokens the stored reply had cost
    cached: bool = False
    saved: Usage | None = None


class Counts(Record):
    """How many rows of each kind a run holds, and rejections per (stage, reason)."""

    instructions_kept: int = 0
    instructions_done: int = 0
    examples: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)
    requests: dict[str, int] = Field(default_factory=dict)
    #: kept instructions by origin (``instructions_kept`` counts them all)
    instructions_by_origin: dict[str, int] = Field(default_factory=dict)


class Manifest(Record):
    """``manifest.json``: enough to tell what a run is, how it was made and what it cost.

    The configuration stored here is the redacted one: it never holds an API key.
    """

    tool_version: str
    created_at: str
    updated_at: str
    status: RunStatus
    config: dict[str, Any]
    fingerprint: dict[str, str]
    package_versions: dict[str, str]
    counts: Counts
    usage: dict[str, Usage]
    cost_usd: float | None = None
    endpoints: dict[str, dict[str, Any]] = Field(default_factory=dict)
    timings_s: dict[str, float]
    stop_reason: str | None = None
    #: the response cache: path (None: off), hits, misses, saved tokens and saved_cost_usd
    cache: dict[str, Any] = Field(default_factory=dict)
    #: per stage that has a structured mode: "structured" (JSON schema) or "text"
    stage_modes: dict[str, str] = Field(default_factory=dict)
    #: where jobs ran: ``{"kind": "local"}`` or, for Ray, its version, address and per Ray
    #: node id the jobs, requests and examples it handled (this session's)
    executor: dict[str, Any] = Field(default_factory=dict)


class RunResult(Record):
    """What a finished (or stopped) run holds: what ``run_pipeline`` returns, the CLI prints."""

    out: Path
    status: RunStatus
    target: int
    instructions_done: int
    examples: int
    rejected_by_reason: dict[str, int]
    usage: dict[str, Usage]
    elapsed_s: float
    stop_reason: str | None = None
    notes: list[str] = Field(default_factory=list)


# ---------------------------------------------------- structured replies (JSON schema mode)


class TaskList(Record):
    """Stage 1's structured reply: the new task instructions."""

    tasks: list[str] = Field(min_length=1)


class ClassifyReply(Record):
    """The classify stage's structured reply."""

    is_classification: bool


class InputItem(Record):
    """One input written for an input-first task (``""`` when the task needs none)."""

    input: str


class InputsReply(Record):
    """Stage 2's structured reply for an input-first task: inputs only (stage 3 answers)."""

    instances: list[InputItem] = Field(min_length=1)


class LabelledInput(Record):
    """One (class label, input) pair of an output-first (classification) task."""

    label: str
    input: str


class LabelledInputsReply(Record):
    """Stage 2's structured reply for a classification task: labels and their inputs."""

    instances: list[LabelledInput] = Field(min_length=1)
