"""Errors a user can act on. The CLI turns each into one line and an exit code; no traceback."""

from __future__ import annotations

from pathlib import Path

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
