"""What an executor is given and what it offers the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from selfinstruct.config import RunConfig
from selfinstruct.jobs import JobRunner
from selfinstruct.records import Instance, Instruction, SeedTask, TeacherCall
from selfinstruct.stages import Job, Stage
from selfinstruct.teachers.base import Teacher


@dataclass(frozen=True)
class ExecutorContext:
    """The run as an executor sees it.

    ``sequence`` is the stage classes, which a remote worker builds again from ``config`` and
    ``seeds`` (``prompt_sha256`` proves it loaded the same templates); ``record_call`` appends
    a teacher call to the run, ``new_call_id`` names one uniquely in the run, ``check_budget``
    raises once a cap is reached.
    """

    config: RunConfig
    seeds: list[SeedTask]
    sequence: Sequence[type[Stage[Job]]]
    prompt_sha256: Mapping[str, str]
    record_call: Callable[[TeacherCall], None]
    new_call_id: Callable[[str], str]
    check_budget: Callable[[], None]


class Executor(Protocol):
    """Runs kept instructions' jobs; ``expand`` returns the finished job and its kept instances
    (the rest are in ``job.rejections``) and raises what the job raised."""

    async def start(self, jobs: JobRunner) -> None:
        """Get ready; ``jobs`` is the driver's runner, with the driver's teachers."""
        ...

    def slots(self, teacher: Teacher) -> int:
        """Jobs that may usefully run at once, given the driver's stage-1 teacher."""
        ...

    async def expand(self, row: Instruction) -> tuple[Job, list[Instance]]: ...

    def stats(self) -> dict[str, Any]:
        """The manifest's ``executor`` section."""
        ...

    async def aclose(self) -> None: ...
