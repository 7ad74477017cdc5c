"""RunConfig: everything a run needs, validated by pydantic, from a YAML/TOML file plus overrides.

Precedence (later wins): built-in defaults < config file < environment (``OPENAI_BASE_URL``,
``OPENAI_API_KEY``) < command-line options. Any field can be set from the command line
with ``--set dotted.path=value`` (the value is parsed as YAML, so ``0.8``, ``true`` and
``[a, b]`` work).

``teacher`` (and each ``stages.<name>.teacher``) is one backend's config class, chosen by
``kind`` (:data:`TeacherConfig`, a union of the classes registered in
``selfinstruct.teachers.BACKENDS``); :func:`resolve_teacher` says how an unset kind is chosen
and how a stage's teacher is laid over the default one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from selfinstruct.errors import InputError
from selfinstruct.records import Stage
from selfinstruct.teachers import BACKENDS
from selfinstruct.teachers.base import Api, TeacherSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEEDS = REPO_ROOT / "seeds" / "seed_tasks.jsonl"

ApiKind = Api
#: the teacher backends' kinds (``teacher.kind``), from the registry in selfinstruct.teachers
TEACHER_KINDS: tuple[str, ...] = tuple(BACKENDS)

#: one backend's config, chosen by ``kind``: OpenAIConfig, OpenAIBatchConfig, LocalConfig or
#: VllmConfig (every class registered in ``selfinstruct.teachers.BACKENDS``)
TeacherConfig = Annotated[
    Union[tuple(backend.config for backend in BACKENDS.values())],  # noqa: UP007
    Field(discriminator="kind"),
]
_TEACHER_ADAPTER: TypeAdapter[TeacherSettings] = TypeAdapter(TeacherConfig)

#: environment variables that fill a teacher field when it is unset and the backend has it
ENVIRONMENT_FIELDS = (("OPENAI_BASE_URL", "base_url"), ("OPENAI_API_KEY", "api_key"))

# The paper's keyword blacklist plus Alpaca's additions (video, audio, music, flowchart, diagram).
DEFAULT_BLACKLIST = [
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
    "map", "maps", "draw", "plot", "go to",
    "video", "audio", "music", "flowchart", "diagram",
]  # fmt: skip


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def resolve_teacher(
    own: Mapping[str, Any],
    inherited: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A teacher section's fields, ready for validation as a :data:`TeacherConfig`.

    ``own`` is laid over ``inherited`` (a stage's teacher over the default one); unset fields
    the backend has are filled from ``environ`` (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``).
    ``kind`` unset means ``openai`` when a base URL or an API key is configured, else
    ``local``. Inherited fields the chosen backend does not have are dropped (a stage may
    switch kind); its own such fields are kept, so validation names them. ``kind: null`` and
    ``api: null`` (older manifests) mean unset.
    """
    own = {k: v for k, v in own.items() if not (k in ("kind", "api") and v is None)}
    inherited = {k: v for k, v in (inherited or {}).items() if k not in ("kind", "api") or v}
    data = inherited | own
    kind = data.get("kind")
    backend = BACKENDS.get(kind) if isinstance(kind, str) else None
    for variable, field in ENVIRONMENT_FIELDS:
        value = (environ or {}).get(variable)
        if value and not data.get(field) and (kind is None or field in _fields(backend)):
            data[field] = value
    if kind is None:
        kind = "openai" if data.get("base_url") or data.get("api_key") is not None else "local"
        backend = BACKENDS[kind]
    if backend is not None:
        accepted = _fields(backend)
        data = {k: v for k, v in data.items() if k in own or k in accepted}
    data["kind"] = kind
    return data


def _fields(backend: Any) -> set[str]:
    return set(backend.config.model_fields) if backend is not None else set()


def _teacher_fields(value: Any) -> Any:
    """A teacher section as a plain mapping of the fields that were set."""
    if isinstance(value, TeacherSettings):
        return value.model_dump(exclude_unset=True) | {"kind": value.kind}
    return dict(value) if isinstance(value, Mapping) else value


def parse_teacher_config(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> TeacherSettings:
    """Validate one teacher section (kind chosen as in :func:`resolve_teacher`); raises
    pydantic's ValidationError (wrap with :func:`config_error`)."""
    return _TEACHER_ADAPTER.validate_python(resolve_teacher(data, environ=environ))


class SamplingConfig(Section):
    """Sampling for one stage; ``None`` means the prompt file's front matter decides."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = None


class StageConfig(Section):
    """Per-stage prompt file, sampling and (optionally) a teacher different from the default."""

    prompt: Path | None = None
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    teacher: TeacherConfig | None = Field(
        default=None,
        description="This stage's teacher: fields set here are laid over the default teacher.",
    )


class InputsStageConfig(StageConfig):
    """Stage 2 has two templates: ``prompt`` (input-first) and ``output_first_prompt``
    (classification tasks: a label, then an input)."""

    output_first_prompt: Path | None = None


class StagesConfig(Section):
    instructions: StageConfig = Field(default_factory=StageConfig)
    classify: StageConfig = Field(default_factory=StageConfig)
    inputs: InputsStageConfig = Field(default_factory=InputsStageConfig)
    outputs: StageConfig = Field(default_factory=StageConfig)

    def get(self, stage: Stage) -> StageConfig:
        return getattr(self, stage)


class FilterConfig(Section):
    """Stage-1 heuristics and the ROUGE-L novelty rule (reject iff max F > threshold)."""

    rouge_threshold: float = Field(default=0.7, ge=0, le=1)
    min_words: int = Field(default=4, ge=1)
    max_words: int = Field(default=150, ge=1)
    blacklist: list[str] = Field(default_factory=lambda: list(DEFAULT_BLACKLIST))
    banned_prefixes: list[str] = Field(default_factory=lambda: ["Write a program"])
    placeholder_outputs: list[str] = Field(
        default_factory=lambda: ["n/a", "na", "none", "null", "nan", "-", "...", "<nooutput>"]
    )


class PriceConfig(Section):
    """USD per 1M tokens for one model."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class BudgetConfig(Section):
    """Caps for the whole run (all sessions together) and the price table behind the cost.

    Prices: the table shipped in ``selfinstruct/prices.yaml``, then ``prices_file``, then the
    inline ``prices`` (model -> input/output USD per 1M tokens), each laid over the last.
    When a cap is reached the run stops starting new work, lets the work in flight finish,
    and stops cleanly; rerun with a higher cap to continue.
    """

    max_cost_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    prices_file: Path | None = None
    prices: dict[str, PriceConfig] = Field(default_factory=dict)


class RunConfig(Section):
    """A whole run. ``selfinstruct generate`` builds one of these and hands it to the pipeline."""

    seeds: Path = DEFAULT_SEEDS
    out: Path | None = None
    num_instructions: int = Field(default=100, ge=1)
    seed: int = 42
    num_seed_demos: int = Field(default=6, ge=0)
    num_machine_demos: int = Field(default=2, ge=0)
    instructions_per_request: int = Field(default=20, ge=1)
    max_instances_per_instruction: int = Field(default=3, ge=1)
    classify_demos: int = Field(default=12, ge=0)
    instance_demos: int = Field(default=4, ge=0)
    teacher: TeacherConfig = Field(
        default_factory=lambda: parse_teacher_config({}),
        description="The default teacher (every stage's unless the stage sets its own).",
    )
    stages: StagesConfig = Field(default_factory=StagesConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    max_consecutive_failures: int = Field(default=20, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _resolve_teachers(cls, data: Any, info: ValidationInfo) -> Any:
        """Choose each teacher's kind, fill it from the environment given as the validation
        context's ``environ``, and lay each stage's teacher over the default one."""
        if not isinstance(data, Mapping):
            return data
        environ = (info.context or {}).get("environ") or {}
        data = dict(data)
        default = _teacher_fields(data.get("teacher") or {})
        if not isinstance(default, dict):
            return data
        data["teacher"] = resolve_teacher(default, environ=environ)
        stages = data.get("stages")
        if isinstance(stages, Mapping):
            stages = dict(stages)
            for name, section in stages.items():
                if isinstance(section, Mapping) and section.get("teacher") is not None:
                    own = _teacher_fields(section["teacher"])
                    if isinstance(own, dict):
                        resolved = resolve_teacher(own, default, environ)
                        stages[name] = dict(section) | {"teacher": resolved}
            data["stages"] = stages
        return data

    def teacher_for(self, stage: Stage) -> TeacherSettings:
        """The stage's teacher config: its own (already laid over the default), else the
        default. ``.kind`` says which backend, ``.api`` which prompt shape."""
        override = self.stages.get(stage).teacher
        return override if override is not None else self.teacher

    def redacted(self) -> dict[str, Any]:
        """The config as plain JSON data with every API key removed: safe for manifests and logs."""
        return _drop_keys(json.loads(self.model_dump_json()), "api_key")


def _drop_keys(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _drop_keys(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_drop_keys(v, key) for v in value]
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file into a dict."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a YAML or TOML file", path=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from None
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"invalid TOML: {exc}", path=path) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(f"invalid YAML: {problem}", path=path, line=line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"expected a mapping at the top level, got {type(data).__name__}", path=path
        )
    return data


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_dotted(d, "a.b", 1)`` sets ``d["a"]["b"] = 1``, creating mappings on the way."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse ``key.path=value`` (value as YAML) from ``--set``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def build_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> RunConfig:
    """Defaults < file < environment < overrides, validated. Errors name the file and field."""
    data: dict[str, Any] = read_config_file(path) if path is not None else {}
    env = os.environ if environ is None else environ
    teacher = data.setdefault("teacher", {})
    if not isinstance(teacher, dict):
        raise InputError("expected a mapping", path=path, field="teacher")
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    try:
        return RunConfig.model_validate(data, context={"environ": env})
    except ValidationError as exc:
        raise config_error(exc, path) from None


def config_error(exc: ValidationError, path: Path | None) -> InputError:
    """The first validation problem as ``file: field: problem`` (never echoing a secret)."""
    first = exc.errors()[0]
    parts = [str(part) for part in first["loc"]]
    backend = next(
        (p for i, p in enumerate(parts) if p in BACKENDS and i and parts[i - 1] == "teacher"),
        None,
    )  # a teacher union's member: the backend chosen by kind
    if backend is not None:
        parts.remove(backend)
    field = ".".join(parts) or None
    problem = first["msg"]
    if first["type"] == "extra_forbidden":
        problem = "unknown field"
        if backend is not None:
            accepted = ", ".join(sorted(set(BACKENDS[backend].config.model_fields) - {"kind"}))
            problem += f" for the {backend} teacher (it takes: {accepted})"
    elif first["type"] == "union_tag_invalid":
        field = f"{field}.kind" if field else "kind"
        problem = f"expected one of {', '.join(BACKENDS)} (got {first['ctx']['tag']!r})"
    elif (
        "api_key" not in (field or "")
        and "input" in first
        and not isinstance(first["input"], (dict, list))  # might hold a secret
    ):
        problem = f"{problem} (got {first['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(problem, path=path if path is not None else "config", field=field)
