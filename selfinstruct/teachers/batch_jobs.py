"""The Batch API's HTTP side for :class:`~selfinstruct.teachers.openai_batch.OpenAIBatchTeacher`:
upload a JSONL input file, create a batch, poll it to a final status, download its result
lines. Every call is retried as :class:`~selfinstruct.teachers.openai_wire.RetryPolicy` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import openai

from selfinstruct.teachers import openai_wire as wire

log = logging.getLogger(__name__)

#: batch statuses after which nothing changes
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchJobs:
    """Batch jobs on one endpoint (``/v1/chat/completions`` or ``/v1/completions``)."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        endpoint: str,
        completion_window: str,
        poll_s: float,
        retry: wire.RetryPolicy,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.completion_window = completion_window
        self.poll_s = poll_s
        self.retry = retry

    async def submit(self, lines: list[dict[str, Any]], name: str) -> tuple[str, str]:
        """Upload ``lines`` as one input file and create a batch: ``(batch_id, input_file_id)``."""
        payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        uploaded = await self._with_retries(
            "upload the batch input",
            lambda: self.client.files.create(
                file=(name, payload.encode(), "application/jsonl"), purpose="batch"
            ),
        )
        batch = await self._with_retries(
            "create the batch",
            lambda: self.client.batches.create(
                input_file_id=uploaded.id,
                endpoint=self.endpoint,  # type: ignore[arg-type]
                completion_window=self.completion_window,  # type: ignore[arg-type]
                metadata={"source": "selfinstruct"},
            ),
        )
        return batch.id, uploaded.id

    async def wait(self, batch_id: str) -> Any:
        """``batches.retrieve`` every ``poll_s`` until the batch reaches a final status."""
        errors = 0
        status = ""
        while True:
            try:
                batch = await self.client.batches.retrieve(batch_id)
                errors = 0
            except openai.OpenAIError as exc:
                errors += 1
                if not self.retry.should_retry(exc, errors):
                    raise
                log.info("polling batch %s failed (%s); retrying", batch_id, exc)
                await asyncio.sleep(self.retry.delay(errors, exc))
                continue
            if batch.status in TERMINAL:
                return batch
            if batch.status != status:
                status = batch.status
                log.debug("batch %s is %s", batch_id, status)
            await asyncio.sleep(self.poll_s)

    async def result_rows(self, batch: Any) -> list[dict[str, Any]]:
        """The rows of a finished batch's output and error files (unreadable lines skipped)."""
        rows: list[dict[str, Any]] = []
        for file_id in (
            getattr(batch, "output_file_id", None),
            getattr(batch, "error_file_id", None),
        ):
            if not file_id:
                continue
            content = await self._with_retries(
                "download the batch results", lambda f=file_id: self.client.files.content(f)
            )
            for line in content.text.splitlines():
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    log.warning("batch %s: skipping an unreadable result line", batch.id)
                    continue
                if isinstance(row, dict):
                    rows.append(row)
        return rows

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """``await call()``, retried as the wire module's retry policy says."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except openai.OpenAIError as exc:
                if not self.retry.should_retry(exc, attempt):
                    raise
                log.info("could not %s (%s); retry %d", what, exc, attempt)
                await asyncio.sleep(self.retry.delay(attempt, exc))


def line_error(row: dict[str, Any], status: Any, body: Any) -> str:
    """One line saying why a batch line failed, from its ``error`` or its response body."""
    error = row.get("error")
    if isinstance(error, dict) and error.get("message"):
        code = f" ({error['code']})" if error.get("code") else ""
        return f"batch line failed{code}: {error['message']}"
    detail = ""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            detail = str(inner.get("message") or "")
        elif inner:
            detail = str(inner)
    with contextlib.suppress(TypeError, ValueError):
        status = int(status)
    return f"batch line failed with HTTP {status}: {detail or 'no message'}"
