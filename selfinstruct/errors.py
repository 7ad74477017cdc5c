"""Errors a user can act on. The CLI turns each into one line and an exit code; no traceback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

EXIT_BAD_INPUT = 2
EXIT_TEACHER_FAILED = 3
EXIT_INTERRUPTED = 130


class SelfInstructError(Exception):
    """Base of every error the tool reports to a user in one line."""

    exit_code = 1


class InputError(SelfInstructError):
    """Bad user input (config, seeds, prompts, data files, paths): ``file:line: field: problem``."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.problem = problem
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "") + ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.problem}"


#: a value under one of these field names is never echoed in a message
_SECRET_FIELDS = ("api_key", "key", "token", "secret", "password")
_SNIPPET = 60


def validation_problem(exc: ValidationError, *, show_input: bool = True) -> tuple[str | None, str]:
    """The first problem of a pydantic error as ``(dotted field or None, problem)``.

    ``missing field`` and ``unknown field`` for those two kinds; otherwise pydantic's message,
    with the offending value (cut to 60 characters) unless ``show_input`` is false or the field
    holds a secret; ``(and N more problems)`` when there are more.
    """
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first["loc"]]
    field = ".".join(loc) or None
    if first["type"] == "missing":
        problem = "missing field"
    elif first["type"] == "extra_forbidden":
        problem = "unknown field"
    else:
        problem = first["msg"]
        secret = any(part in _SECRET_FIELDS or part.endswith("_key") for part in loc)
        nested = isinstance(first.get("input"), (dict, list))  # a section: may hold a secret
        if show_input and not secret and not nested and "input" in first:
            value = repr(first["input"])
            value = value if len(value) <= _SNIPPET else value[:_SNIPPET] + "..."
            problem = f"{problem} (got {value})"
    more = len(errors) - 1
    if more:
        problem += f" (and {more} more problem{'s' if more > 1 else ''})"
    return field, problem


class TeacherError(SelfInstructError):
    """A teacher request failed for good (retries exhausted, or a non-retryable 4xx)."""

    exit_code = EXIT_TEACHER_FAILED


class TeacherUnavailable(TeacherError):
    """The teacher could not be set up (missing package, no GPU, missing model file)."""

    exit_code = EXIT_BAD_INPUT


class CircuitOpen(TeacherError):
    """Too many consecutive teacher failures: the run stops cleanly, resumable."""

    exit_code = EXIT_TEACHER_FAILED


class Interrupted(SelfInstructError):
    """Ctrl-C or SIGTERM: in-flight work was dropped, everything written is kept, resumable."""

    exit_code = EXIT_INTERRUPTED

    @classmethod
    def at(cls, signal_name: str, done: int, target: int, out: object) -> Interrupted:
        """The error a run stopped by ``signal_name`` ends with, saying how to resume."""
        return cls(
            f"interrupted by {signal_name} at {done}/{target} instructions; everything "
            f"written is kept. Resume: run the same command again with --out {out}"
        )
