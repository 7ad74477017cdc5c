"""RunConfig: everything a run needs, validated by pydantic, from a YAML/TOML file plus overrides.

Precedence (later wins): built-in defaults < config file < environment (``OPENAI_BASE_URL``,
``OPENAI_API_KEY``) < command-line options. Any field can be set from the command line
with ``--set dotted.path=value`` (the value is parsed as YAML, so ``0.8``, ``true`` and
``[a, b]`` work).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from selfinstruct.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SEEDS = REPO_ROOT / "seeds" / "seed_tasks.jsonl"

TeacherKind = Literal["openai", "openai-batch", "local", "vllm"]
ApiKind = Literal["chat", "completions"]

# The paper's keyword blacklist plus Alpaca's additions (video, audio, music, flowchart, diagram).
DEFAULT_BLACKLIST = [
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
    "map", "maps", "draw", "plot", "go to",
    "video", "audio", "music", "flowchart", "diagram",
]  # fmt: skip


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TeacherConfig(Section):
    """Which model answers, and how it is reached. Fields left unset are filled by defaults.

    ``kind`` unset means: ``openai`` when a base URL or an API key is configured, else the
    embedded ``local`` model. ``api`` unset means ``completions`` for local/vllm teachers
    (small models follow the "Task N:" layout best) and ``chat`` for OpenAI-compatible ones.
    """

    kind: TeacherKind | None = None
    base_url: list[str] = Field(default_factory=list)
    model: str | None = None
    api: ApiKind | None = None
    api_key: SecretStr | None = None
    max_concurrency: int = Field(default=8, ge=1, le=4096)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=100)
    # openai teacher: per-endpoint cap (None: only the global max_concurrency) and AIMD
    # concurrency within [1, max_concurrency] (halved on HTTP 429, grown while latency holds)
    max_concurrency_per_endpoint: int | None = Field(default=None, ge=1, le=4096)
    adaptive_concurrency: bool = True
    # local (llama.cpp) teacher
    model_path: Path | None = None
    n_threads: int | None = Field(default=None, ge=1)
    n_ctx: int = Field(default=2048, ge=256)
    # vllm teacher
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: int | None = None
    enforce_eager: bool | None = Field(
        default=None,
        description="skip CUDA graphs/torch.compile (starts in seconds); unset: on CPU only",
    )
    kv_cache_gib: float | None = Field(
        default=None,
        gt=0,
        description="KV-cache size in GiB; unset: vLLM's own sizing on a GPU, 2 GiB on CPU",
    )
    # openai-batch teacher (the OpenAI Batch API: requests coalesced into batch jobs)
    #: where batches.jsonl / results.jsonl live (the pipeline sets ``<out>/batches`` if unset)
    batch_dir: Path | None = None
    batch_size: int = Field(default=1000, ge=1, le=50_000)
    batch_flush_s: float = Field(default=30.0, ge=0)
    batch_poll_s: float = Field(default=30.0, gt=0)
    completion_window: str = "24h"

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value

    def resolved_kind(self) -> TeacherKind:
        if self.kind is not None:
            return self.kind
        return "openai" if self.base_url or self.api_key is not None else "local"

    def resolved_api(self) -> ApiKind:
        if self.api is not None:
            return self.api
        return "chat" if self.resolved_kind() in ("openai", "openai-batch") else "completions"


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
    teacher: TeacherConfig | None = None


class InputsStageConfig(StageConfig):
    """Stage 2 has two templates: ``prompt`` (input-first) and ``output_first_prompt``
    (classification tasks: a label, then an input)."""

    output_first_prompt: Path | None = None


class StagesConfig(Section):
    """One section a stage. A stage added to the sequence (not built in) gets its section
    under its own name; a section naming no stage of the run is refused when the run starts."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    __pydantic_extra__: dict[str, StageConfig] = Field(init=False)

    instructions: StageConfig = Field(default_factory=StageConfig)
    classify: StageConfig = Field(default_factory=StageConfig)
    inputs: InputsStageConfig = Field(default_factory=InputsStageConfig)
    outputs: StageConfig = Field(default_factory=StageConfig)

    def get(self, stage: str) -> StageConfig:
        if stage in type(self).model_fields:
            return getattr(self, stage)
        return (self.__pydantic_extra__ or {}).get(stage) or StageConfig()

    def extra_sections(self) -> list[str]:
        return sorted(self.__pydantic_extra__ or {})


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
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    max_consecutive_failures: int = Field(default=20, ge=1)

    def teacher_for(self, stage: str) -> TeacherConfig:
        """The default teacher with the stage's own teacher fields (those set) laid over it."""
        override = self.stages.get(stage).teacher
        if override is None:
            return self.teacher
        merged = self.teacher.model_dump() | override.model_dump(exclude_unset=True)
        return TeacherConfig.model_validate(merged)

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
    if env.get("OPENAI_BASE_URL") and not teacher.get("base_url"):
        teacher["base_url"] = env["OPENAI_BASE_URL"]
    if env.get("OPENAI_API_KEY") and not teacher.get("api_key"):
        teacher["api_key"] = env["OPENAI_API_KEY"]
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, path) from None


def config_error(exc: ValidationError, path: Path | None) -> InputError:
    """The first validation problem as ``file: field: problem`` (never echoing a secret)."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    problem = first["msg"]
    if first["type"] == "extra_forbidden":
        problem = "unknown field"
    elif "api_key" not in (field or "") and "input" in first:
        problem = f"{problem} (got {first['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(problem, path=path if path is not None else "config", field=field)
