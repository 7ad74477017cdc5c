"""The OpenAI Batch API teacher: the same requests as the OpenAI teacher, at batch prices.

Concurrent :meth:`OpenAIBatchTeacher.complete` calls are coalesced (one
:class:`~selfinstruct.teachers.batching.Coalescer`): each request becomes one line of a batch
input file (``{"custom_id", "method": "POST", "url", "body"}``, the body and its parsing from
:mod:`~selfinstruct.teachers.openai_wire`, as the online teacher sends it). When
``batch_size`` requests are queued, or ``batch_flush_s`` has passed since the first, the file
is uploaded (``files.create(purpose="batch")``), a batch is created (``batches.create``) and
polled every ``batch_poll_s`` until it is ``completed``, ``failed``, ``expired`` or
``cancelled``; then its output and error files are downloaded and each caller gets its
:class:`Completion`, or a :class:`TeacherError` for its line alone.

Resumable, so a killed run never pays twice: a request's key is a hash of its URL and body
(requests carry their own seeds, so equal bodies are the same request), and its line's
``custom_id`` is that key plus the stage (``si-<hash>-<stage>``; the stage is for server-side
tracing). Every submitted batch and every answer is journaled in ``batch_dir``
(:mod:`~selfinstruct.teachers.batch_journal`). A new teacher on the same ``batch_dir`` loads
both: a request already answered is answered from the file with no HTTP at all, and one in a
batch that was submitted but had not finished waits for that batch (polled again) instead of
being submitted again. Only answers are stored: a failed line is sent again when asked again.
Identical requests in flight at the same time share one line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

import openai
from pydantic import Field

from selfinstruct.errors import TeacherError
from selfinstruct.teachers import openai_wire as wire
from selfinstruct.teachers.base import Api, Completion, Request
from selfinstruct.teachers.batch_jobs import TERMINAL, BatchJobs, line_error
from selfinstruct.teachers.batch_journal import (
    BATCHES_FILE,
    RESULTS_FILE,
    BatchJournal,
    BatchRecord,
)
from selfinstruct.teachers.batching import Coalescer

log = logging.getLogger(__name__)

#: ``si-`` and 40 hex digits: the part of a custom_id that names the request
KEY_LENGTH = 43

Outcome = dict[str, dict[str, Any] | TeacherError]  # request key -> response body or error


class OpenAIBatchConfig(wire.OpenAIClientSettings):
    """The OpenAI Batch API teacher: requests coalesced into batch jobs, at batch prices."""

    kind: Literal["openai-batch"] = Field(
        default="openai-batch", description="The OpenAI Batch API (answers within hours)."
    )
    batch_dir: Path | None = Field(
        default=None, description="Where the batch journal lives (unset: <out>/batches)."
    )
    batch_size: int = Field(
        default=1000, ge=1, le=50_000, description="Requests per batch job at most."
    )
    batch_flush_s: float = Field(
        default=30.0, ge=0, description="Seconds a request waits for others before its batch goes."
    )
    batch_poll_s: float = Field(default=30.0, gt=0, description="Seconds between status polls.")
    completion_window: str = Field(
        default="24h", description="The Batch API's completion window."
    )


def request_key(url: str, body: dict[str, Any]) -> str:
    """A stable key for one request: the same URL and body always give the same key."""
    canonical = json.dumps({"url": url, "body": body}, sort_keys=True, separators=(",", ":"))
    return "si-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def custom_id(url: str, body: dict[str, Any], stage: str) -> str:
    """A line's id: the request's key, then the stage it serves."""
    return f"{request_key(url, body)}-{stage}"


def key_of(custom_id: str) -> str:
    """The request key in a custom_id (journals written before ids named the stage: all of it)."""
    return custom_id[:KEY_LENGTH] if custom_id.startswith("si-") else custom_id


class OpenAIBatchTeacher:
    """A :class:`~selfinstruct.teachers.base.Teacher` over the OpenAI Batch API.

    ``batch_dir`` (else ``config.batch_dir``) holds the journal; with neither, nothing is
    persisted. Counters: :attr:`batches_submitted`, :attr:`batch_sizes`,
    :attr:`answered_from_journal`, :attr:`failures`.
    """

    def __init__(
        self,
        config: OpenAIBatchConfig,
        *,
        batch_dir: Path | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.config = config
        self.api: Api = config.api
        self.model: str = config.model or ""
        self.max_concurrency: int = config.max_concurrency
        self.retry = wire.RetryPolicy(
            max_retries=config.max_retries, base_s=backoff_base_s, max_s=backoff_max_s
        )
        self.endpoint = wire.API_PATHS[self.api]
        self.batch_dir = batch_dir if batch_dir is not None else config.batch_dir
        self.batches_submitted = 0
        #: sizes of the batches this instance submitted, in order
        self.batch_sizes: list[int] = []
        self.answered_from_journal = 0
        self.failures = 0
        self._key = config.key()
        self.base_url = (config.base_url or [wire.DEFAULT_BASE_URL])[0].rstrip("/")
        if len(config.base_url) > 1:
            log.warning("the openai-batch teacher uses only the first base URL, %s", self.base_url)
        self.client = wire.make_client(
            self.base_url, self._key, config.timeout_s, config.http_client
        )
        self.jobs = BatchJobs(
            self.client,
            endpoint=self.endpoint,
            completion_window=config.completion_window,
            poll_s=config.batch_poll_s,
            retry=self.retry,
        )
        self._journal = BatchJournal(self.batch_dir)
        self._results: dict[str, dict[str, Any]] = {}  # request key -> response body
        self._inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}  # queued or in a batch
        self._in_batch: set[str] = set()  # keys whose line is in a submitted batch
        self._waiters: dict[str, int] = {}  # callers waiting per key
        self._coalescer: Coalescer[dict[str, Any], dict[str, Any]] = Coalescer(
            self._run_batch,
            max_items=config.batch_size,
            max_wait_s=config.batch_flush_s,
            name="openai batch",
        )
        self._tasks: set[asyncio.Task[None]] = set()  # polls of batches resumed from the journal
        self._closed = False
        self._started = False

    # -- Teacher protocol ------------------------------------------------------------------

    async def start(self) -> None:
        """Load the journal, resume polling unfinished batches, discover the model if unset."""
        if self._started:
            return
        self._started = True
        self._load()
        if not self.model:
            clients = [(self.base_url, self.client)]
            self.model, _ = await wire.discover_model(clients, self.config.timeout_s, self._key)

    async def complete(self, request: Request) -> Completion:
        if self._closed:
            raise TeacherError("the openai-batch teacher is closed")
        if not self._started:
            await self.start()
        try:
            body = wire.request_body(self.api, self.model, request)
        except ValueError as exc:
            raise TeacherError(str(exc)) from None
        key = request_key(self.endpoint, body)
        stored = self._results.get(key)
        if stored is not None:
            self.answered_from_journal += 1
            return self._completion(key, stored, request, 0.0)
        started = time.perf_counter()
        future = self._inflight.get(key)
        if future is None:
            line = {
                "custom_id": custom_id(self.endpoint, body, str(request.stage)),
                "method": "POST", "url": self.endpoint, "body": body,
            }  # fmt: skip
            future = asyncio.ensure_future(self._coalescer.submit(line))
            self._inflight[key] = future
            future.add_done_callback(lambda done, key=key: self._settled(key, done))
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            response = await asyncio.shield(future)
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:
                del self._waiters[key]
                if not future.done() and key not in self._in_batch:  # nobody wants it now
                    future.cancel()
        return self._completion(key, response, request, time.perf_counter() - started)

    async def aclose(self) -> None:
        """Stop polling and fail waiting callers. Batches already submitted keep running on
        the server; a new teacher on the same ``batch_dir`` picks them up."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._coalescer.aclose(cancel_running=True)
        for future in list(self._inflight.values()):
            if not future.done():
                future.set_exception(TeacherError("the openai-batch teacher was closed"))
                future.exception()
        self._inflight.clear()
        self._journal.close()
        await self.client.close()

    def _settled(self, key: str, future: asyncio.Future[dict[str, Any]]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved: nobody waiting is not an error worth a warning

    # -- journal ---------------------------------------------------------------------------

    def _load(self) -> None:
        for row in self._journal.read(RESULTS_FILE):
            cid, body = row.get("custom_id"), row.get("body")
            if isinstance(cid, str) and isinstance(body, dict):
                self._results[key_of(cid)] = body
        records: dict[str, dict[str, Any]] = {}
        for row in self._journal.read(BATCHES_FILE):
            batch_id = row.get("batch_id")
            if isinstance(batch_id, str):
                records.setdefault(batch_id, {}).update(
                    {k: v for k, v in row.items() if v is not None}
                )
        resumed = 0
        loop = asyncio.get_running_loop()
        for data in records.values():
            if data.get("status") in TERMINAL or not isinstance(data.get("custom_ids"), list):
                continue
            record = BatchRecord(
                batch_id=data["batch_id"],
                input_file_id=str(data.get("input_file_id") or ""),
                endpoint=str(data.get("endpoint") or self.endpoint),
                custom_ids=[str(c) for c in data["custom_ids"]],
                status=str(data.get("status")),
                submitted_at=float(data.get("submitted_at") or 0.0),
            )
            keys = [key_of(c) for c in record.custom_ids if key_of(c) not in self._results]
            for key in keys:
                self._inflight.setdefault(key, loop.create_future())
            self._in_batch.update(keys)
            task = loop.create_task(self._resume(record))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            resumed += 1
        if self._results or resumed:
            log.info(
                "openai-batch: %d stored answers, %d unfinished batches resumed from %s",
                len(self._results), resumed, self.batch_dir,
            )  # fmt: skip

    async def _resume(self, record: BatchRecord) -> None:
        """Wait for a batch submitted by an earlier teacher; answer whoever asks meanwhile."""
        outcome = await self._await_batch(record)
        for key, result in outcome.items():
            self._in_batch.discard(key)
            future = self._inflight.pop(key, None)
            if future is None or future.done():
                continue
            if isinstance(result, TeacherError):
                future.set_exception(result)
                future.exception()
            else:
                future.set_result(result)

    # -- one batch -------------------------------------------------------------------------

    async def _run_batch(
        self, lines: list[dict[str, Any]]
    ) -> list[dict[str, Any] | BaseException]:
        """The coalescer's batch function: submit, wait, one body or error per line."""
        keys = [key_of(line["custom_id"]) for line in lines]
        self._in_batch.update(keys)
        try:
            try:
                record = await self._submit(lines)
            except openai.OpenAIError as exc:
                message = f"batch of {len(lines)} not submitted: {self._describe(exc)}"
                return [self._error(message) for _ in lines]
            outcome = await self._await_batch(record)
            return [outcome[key] for key in keys]
        finally:
            self._in_batch.difference_update(keys)

    async def _submit(self, lines: list[dict[str, Any]]) -> BatchRecord:
        name = f"selfinstruct-{key_of(lines[0]['custom_id'])}-{len(lines)}.jsonl"
        batch_id, input_file_id = await self.jobs.submit(lines, name)
        record = BatchRecord(
            batch_id=batch_id,
            input_file_id=input_file_id,
            endpoint=self.endpoint,
            custom_ids=[line["custom_id"] for line in lines],
            status="submitted",  # a final status is journaled only once its results are stored
        )
        self._journal.append(BATCHES_FILE, record.to_json())
        self.batches_submitted += 1
        self.batch_sizes.append(len(lines))
        log.info("submitted batch %s of %d requests", batch_id, len(lines))
        return record

    async def _await_batch(self, record: BatchRecord) -> Outcome:
        """Poll the batch to its end and collect its answers: one entry per request key."""
        keys = [key_of(c) for c in record.custom_ids]
        try:
            batch = await self.jobs.wait(record.batch_id)
            outcome = self._collect(record, await self.jobs.result_rows(batch))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"batch {record.batch_id}: {self._describe(exc)}"
            return {key: self._error(message) for key in keys}
        record.status = batch.status
        record.output_file_id = getattr(batch, "output_file_id", None)
        record.error_file_id = getattr(batch, "error_file_id", None)
        self._journal.append(BATCHES_FILE, record.to_json())  # after the results
        missing = [key for key in keys if key not in outcome]
        if missing:
            reason = f"batch {record.batch_id} ended {batch.status!r} with no answer for it"
            errors = getattr(batch, "errors", None)
            first = (getattr(errors, "data", None) or [None])[0]
            if first is not None and getattr(first, "message", None):
                reason += f" ({first.message})"
            outcome.update({key: self._error(reason) for key in missing})
        return outcome

    def _collect(self, record: BatchRecord, rows: list[dict[str, Any]]) -> Outcome:
        """An entry for every line of ``record`` found in the result rows."""
        wanted = {key_of(c) for c in record.custom_ids}
        outcome: Outcome = {}
        for row in rows:
            cid = row.get("custom_id")
            if isinstance(cid, str) and key_of(cid) in wanted and key_of(cid) not in outcome:
                outcome[key_of(cid)] = self._answer(cid, row)
        return outcome

    def _answer(self, cid: str, row: dict[str, Any]) -> dict[str, Any] | TeacherError:
        """A line's response body (journaled), or the error saying why it failed."""
        response = row.get("response") if isinstance(row.get("response"), dict) else None
        status = response.get("status_code") if response else None
        body = response.get("body") if response else None
        if status == 200 and isinstance(body, dict):
            try:
                wire.parse_response(self.api, body, self.model)
            except wire.MalformedResponse as exc:
                return self._error(f"malformed response in the batch output: {exc}")
            self._results[key_of(cid)] = body
            self._journal.append(RESULTS_FILE, {"custom_id": cid, "body": body})
            return body
        return self._error(line_error(row, status, body))

    # -- helpers ---------------------------------------------------------------------------

    def _error(self, message: str) -> TeacherError:
        self.failures += 1
        return TeacherError(wire.scrub(message, self._key))

    def _completion(
        self, key: str, body: dict[str, Any], request: Request, latency_s: float
    ) -> Completion:
        try:
            completion = wire.parse_response(self.api, body, self.model)
        except wire.MalformedResponse as exc:  # a stored body that no longer parses: ask again
            self._results.pop(key, None)
            raise TeacherError(f"{request.stage}: malformed stored response: {exc}") from None
        return dataclasses.replace(completion, latency_s=latency_s)

    def _describe(self, exc: BaseException) -> str:
        return wire.describe(exc, self.base_url, self.config.timeout_s)
