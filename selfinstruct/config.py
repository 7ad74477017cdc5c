"""RunConfig: everything a run needs, validated by pydantic, from a YAML/TOML file plus overrides.

Precedence (later wins): built-in defaults < config file < environment (``OPENAI_BASE_URL``,
``OPENAI_API_KEY``) < command-line options. Any field can be set from the command line
with ``--set dotted.path=value`` (the value is parsed as YAML, so ``0.8``, ``true`` and
``[a, b]`` work).

``teacher`` (and each ``stages.<name>.teacher``) is one backend's config class, chosen by
``kind``: :mod:`selfinstruct.teachers.choice` builds that union from the backends registered
in ``selfinstruct.teachers.BACKENDS`` and says how an unset kind is chosen and how a stage's
teacher is laid over the default one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, ValidationInfo, model_validator

from selfinstruct.assets import default_seed_file
from selfinstruct.config_executor import ExecutorConfig
from selfinstruct.config_paths import resolve_file_paths
from selfinstruct.config_sections import (
    FilterConfig,
    Section,
    StagesConfig,
)
from selfinstruct.errors import InputError, validation_problem
from selfinstruct.teachers import BACKENDS
from selfinstruct.teachers.base import TeacherSettings
from selfinstruct.teachers.cache import CacheConfig
from selfinstruct.teachers.choice import (
    TeacherConfig,
    parse_teacher_config,
    resolve_teacher,
    teacher_fields,
)

#: the shipped seed tasks (package data, read the same way in editable and wheel installs)
DEFAULT_SEEDS = default_seed_file()


class PriceConfig(Section):
    """USD per 1M tokens for one model."""

    input: float = Field(ge=0, description="USD per 1M prompt tokens.")
    output: float = Field(ge=0, description="USD per 1M completion tokens.")


class BudgetConfig(Section):
    """Caps for the whole run (all sessions together) and the price table behind the cost.

    Prices: the table shipped in ``selfinstruct/run/prices.yaml``, then ``prices_file``, then the
    inline ``prices`` (model -> input/output USD per 1M tokens), each laid over the last.
    When a cap is reached the run stops starting new work, lets the work in flight finish,
    and stops cleanly; rerun with a higher cap to continue.
    """

    max_cost_usd: float | None = Field(
        default=None, gt=0, description="Stop cleanly once the run has cost this many USD."
    )
    max_tokens: int | None = Field(
        default=None, gt=0, description="Stop cleanly once the run has used this many tokens."
    )
    prices_file: Path | None = Field(
        default=None, description="A price table (YAML/TOML) laid over the shipped one."
    )
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict,
        description="Inline prices, model -> {input, output} USD per 1M tokens; these win.",
    )


class RunConfig(Section):
    """A whole run. ``selfinstruct generate`` builds one of these and hands it to the pipeline."""

    seeds: Path = Field(
        default=DEFAULT_SEEDS,
        description="Seed tasks: Self-Instruct JSONL, Alpaca JSON list, or instruction/input/"
        "output JSONL or Parquet (default: the shipped seeds).",
    )
    out: Path | None = Field(
        default=None,
        description="Run directory; an existing one is resumed (default: runs/<date-time>).",
    )
    num_instructions: int = Field(
        default=100, ge=1, description="Target: instructions with at least one kept example."
    )
    seed: int = Field(default=42, description="Random seed for demonstration sampling.")
    num_seed_demos: int = Field(
        default=6, ge=0, description="Seed instructions shown in each stage-1 request."
    )
    num_machine_demos: int = Field(
        default=2, ge=0, description="Earlier generated instructions shown in each stage-1 request."
    )
    instructions_per_request: int = Field(
        default=20, ge=1, description="New instructions each stage-1 request asks for."
    )
    max_instances_per_instruction: int = Field(
        default=3, ge=1, description="Most input/output instances kept per instruction."
    )
    classify_demos: int = Field(
        default=12, ge=0, description="Seed tasks shown in the classification prompt."
    )
    instance_demos: int = Field(
        default=4, ge=0, description="Seed instances shown in stage-2 and stage-3 prompts."
    )
    teacher: TeacherConfig = Field(
        default_factory=lambda: parse_teacher_config({}),
        description="The default teacher (every stage's unless the stage sets its own).",
    )
    stages: StagesConfig = Field(
        default_factory=StagesConfig,
        description="Per stage: prompt template, sampling and an optional teacher override.",
    )
    filters: FilterConfig = Field(
        default_factory=FilterConfig,
        description="Which generated instructions and instances are dropped.",
    )
    budget: BudgetConfig = Field(
        default_factory=BudgetConfig, description="Cost and token caps, and the price table."
    )
    max_consecutive_failures: int = Field(
        default=20, ge=1, description="Stop after this many failed teacher requests in a row."
    )
    cache: CacheConfig = Field(
        default_factory=CacheConfig,
        description="Where teacher replies are kept and re-used (--cache PATH, --no-cache).",
    )
    executor: ExecutorConfig = Field(
        default_factory=ExecutorConfig,
        description="Where each instruction's work runs: locally or on a Ray cluster.",
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_teachers(cls, data: Any, info: ValidationInfo) -> Any:
        """Choose each teacher's kind, fill it from the environment given as the validation
        context's ``environ``, and lay each stage's teacher over the default one."""
        if not isinstance(data, Mapping):
            return data
        environ = (info.context or {}).get("environ") or {}
        data = dict(data)
        default = teacher_fields(data.get("teacher") or {})
        if not isinstance(default, dict):
            return data
        data["teacher"] = resolve_teacher(default, environ=environ)
        stages = data.get("stages")
        if isinstance(stages, Mapping):
            stages = dict(stages)
            for name, section in stages.items():
                if isinstance(section, Mapping) and section.get("teacher") is not None:
                    own = teacher_fields(section["teacher"])
                    if isinstance(own, dict):
                        resolved = resolve_teacher(own, default, environ)
                        stages[name] = dict(section) | {"teacher": resolved}
            data["stages"] = stages
        return data

    def teacher_for(self, stage: str) -> TeacherSettings:
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
    """Defaults < file < environment < overrides, validated. Errors name the file and field.

    Relative paths in the file are relative to the file's folder; in ``overrides``, to the
    current directory."""
    data: dict[str, Any] = {}
    if path is not None:
        data = resolve_file_paths(read_config_file(path), RunConfig, path.parent)
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
    errors = exc.errors()
    first = errors[0]
    parts = [str(part) for part in first["loc"]]
    backend = next(
        (p for i, p in enumerate(parts) if p in BACKENDS and i and parts[i - 1] == "teacher"),
        None,
    )  # a teacher union's member: the backend chosen by kind
    if backend is not None:
        parts.remove(backend)
    field = ".".join(parts) or None
    if first["type"] == "union_tag_invalid":
        field = f"{field}.kind" if field else "kind"
        problem = f"expected one of {', '.join(BACKENDS)} (got {first['ctx']['tag']!r})"
    elif first["type"] == "extra_forbidden" and backend is not None:
        accepted = ", ".join(sorted(set(BACKENDS[backend].config.model_fields) - {"kind"}))
        problem = f"unknown field for the {backend} teacher (it takes: {accepted})"
    else:
        return InputError(validation_problem(exc)[1], path=path or "config", field=field)
    more = len(errors) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(problem, path=path if path is not None else "config", field=field)
