"""The teachers of a run: one per stage, shared by stages whose settings are equal."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from selfinstruct.errors import CircuitOpen, TeacherError
from selfinstruct.records import TeacherCall, Usage
from selfinstruct.teachers import make_teacher
from selfinstruct.teachers.base import Completion, Request, Teacher, TeacherSettings
from selfinstruct.teachers.openai_batch import OpenAIBatchConfig


class TeacherPool:
    """Builds, starts and closes the teacher of every stage; ``pool[stage]`` is its teacher.

    ``max_failures`` requests failing in a row (retries exhausted) open the circuit: the next
    failure raises :class:`CircuitOpen` and the run stops, resumable.
    """

    def __init__(
        self, configs: Mapping[str, TeacherSettings], run_dir: Path, max_failures: int = 20
    ) -> None:
        self.max_failures = max_failures
        self.failures_in_a_row = 0
        built: list[tuple[TeacherSettings, Teacher]] = []
        self._by_stage: dict[str, Teacher] = {}
        for stage, config in configs.items():
            if isinstance(config, OpenAIBatchConfig) and config.batch_dir is None:
                # the Batch API journal lives with the run, so a resume never pays twice
                config = config.model_copy(update={"batch_dir": run_dir / "batches"})
            # equal settings (API keys compared by value) share one teacher and its limits
            shared = next((teacher for seen, teacher in built if seen == config), None)
            if shared is None:
                shared = make_teacher(config)
                built.append((config, shared))
            self._by_stage[stage] = shared
        self.teachers = [teacher for _, teacher in built]

    def __getitem__(self, stage: str) -> Teacher:
        return self._by_stage[stage]

    async def call(
        self,
        stage: str,
        request: Request,
        call_id: str,
        serves: Sequence[str],
        record: Callable[[TeacherCall], None],
    ) -> Completion:
        """Send ``request`` to the stage's teacher and ``record`` its :class:`TeacherCall` row
        (usage, latency, raw reply; or the error, before re-raising it)."""
        teacher = self[stage]
        started = time.monotonic()
        try:
            completion = await teacher.complete(request)
        except TeacherError as exc:
            self.failures_in_a_row += 1
            record(
                TeacherCall(
                    id=call_id,
                    stage=stage,
                    model=teacher.model,
                    usage=Usage(),
                    latency_s=time.monotonic() - started,
                    error=str(exc)[:500],
                    serves=list(serves),
                )
            )
            if self.failures_in_a_row >= self.max_failures:
                raise CircuitOpen(
                    f"{self.failures_in_a_row} teacher requests failed in a row (last: {exc}); "
                    "stopping. Everything so far is saved: rerun to resume"
                ) from None
            raise
        self.failures_in_a_row = 0
        record(
            TeacherCall(
                id=call_id,
                stage=stage,
                model=completion.model or teacher.model,
                usage=completion.usage,
                finish_reason=completion.finish_reason,
                latency_s=completion.latency_s or time.monotonic() - started,
                serves=list(serves),
                text=completion.text,
                choices=1 + len(completion.more),
                more=[text for text, _ in completion.more],
            )
        )
        return completion

    async def start(self) -> None:
        """Start every teacher, then let those that can probe what their servers honour."""
        for teacher in self.teachers:
            await teacher.start()
            probe = getattr(teacher, "probe", None)
            if callable(probe):
                await probe()

    async def aclose(self) -> None:
        """Close every teacher; one failing to close does not keep the others open."""
        for teacher in self.teachers:
            with contextlib.suppress(Exception):
                await teacher.aclose()

    def before_send(self, check: Callable[[], None]) -> None:
        """Have every teacher that queues requests behind a limit call ``check`` right before
        it sends one (a cap reached while a request waited stops it there)."""
        for teacher in self.teachers:
            if hasattr(teacher, "before_send"):
                teacher.before_send = check  # type: ignore[attr-defined]

    def models(self) -> set[str]:
        return {teacher.model for teacher in self.teachers}

    def note(self) -> str:
        """How the progress line describes concurrency: ``serial`` or ``xN``."""
        concurrency = min(teacher.max_concurrency for teacher in self.teachers)
        return "serial" if concurrency == 1 else f"x{concurrency}"

    def endpoint_stats(self) -> dict[str, dict[str, object]]:
        """Per-endpoint counters of the teachers that keep them (never a key)."""
        stats: dict[str, dict[str, object]] = {}
        for teacher in self.teachers:
            report = getattr(teacher, "endpoint_stats", None)
            if callable(report):
                stats.update(report())
        return stats
