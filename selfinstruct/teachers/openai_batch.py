"""The OpenAI Batch API teacher: the same requests as the OpenAI teacher, at batch prices.

Concurrent :meth:`OpenAIBatchTeacher.complete` calls are coalesced: each request becomes one
line of a batch input file (``{"custom_id", "method": "POST", "url", "body"}``, the body built
exactly as :class:`~selfinstruct.teachers.openai.OpenAITeacher` builds it: never ``n`` > 1 or
a list prompt). When ``batch_size`` requests are queued, or ``batch_flush_s`` has passed since
the first, the file is uploaded (``files.create(purpose="batch")``), a batch is created
(``batches.create``) and polled every ``batch_poll_s`` until it is ``completed``, ``failed``,
``expired`` or ``cancelled``; then its output and error files are downloaded and each caller
gets its :class:`Completion`, or a :class:`TeacherError` for its line alone.

Resumable, so a killed run never pays twice: a line's ``custom_id`` is a hash of its URL and
body (requests carry their own seeds, so equal bodies are the same request). Every submitted
batch is appended to ``<batch_dir>/batches.jsonl`` (id, input file, custom_ids, status) and
every answer to ``<batch_dir>/results.jsonl`` (custom_id -> response body), flushed and
fsynced. A new teacher on the same ``batch_dir`` loads both: a request already answered is
answered from the file with no HTTP at all, and one in a batch that was submitted but had not
finished waits for that batch (polled again) instead of being submitted again. Only answers
are stored: a failed line is sent again when asked again. Identical requests in flight at the
same time share one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import openai

from selfinstruct.config import TeacherConfig
from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers.base import Api, Completion, Request
from selfinstruct.teachers.openai import (
    DEFAULT_BASE_URL,
    PLACEHOLDER_API_KEY,
    _connection_reason,
    _retryable,
    _server_message,
)

log = logging.getLogger(__name__)

#: batch statuses after which nothing changes
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ENDPOINTS: dict[Api, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
BATCHES_FILE = "batches.jsonl"
RESULTS_FILE = "results.jsonl"


def custom_id(url: str, body: dict[str, Any]) -> str:
    """A stable id for one request line: the same URL and body always give the same id."""
    canonical = json.dumps({"url": url, "body": body}, sort_keys=True, separators=(",", ":"))
    return "si-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def request_body(api: Api, model: str, request: Request) -> dict[str, Any]:
    """The JSON body for one request, as the OpenAI teacher sends it (one prompt, no ``n``)."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
    }
    if api == "chat":
        if request.messages is None:
            raise ValueError("this teacher uses the chat API: the request needs messages")
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    else:
        if request.prompt is None:
            raise ValueError("this teacher uses the completions API: the request needs a prompt")
        body["prompt"] = request.prompt
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def parse_body(api: Api, body: Any, fallback_model: str) -> Completion:
    """A response body (chat.completion or text_completion JSON) as a Completion.

    Raises ValueError when it holds no usable choice."""
    if not isinstance(body, dict):
        raise ValueError(f"response body is not a JSON object: {str(body)[:80]!r}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")
    first = choices[0]
    if api == "chat":
        message = first.get("message")
        if not isinstance(message, dict):
            raise ValueError("choice has no message")
        text = message.get("content")
    else:
        text = first.get("text")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Completion(
        text=text if isinstance(text, str) else "",
        finish_reason=first.get("finish_reason"),
        usage=Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        ),
        model=str(body.get("model") or fallback_model),
    )


@dataclass
class BatchRecord:
    """One submitted batch as journaled in ``batches.jsonl`` (later lines update earlier ones)."""

    batch_id: str
    input_file_id: str
    endpoint: str
    custom_ids: list[str]
    status: str = "submitted"
    output_file_id: str | None = None
    error_file_id: str | None = None
    submitted_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "input_file_id": self.input_file_id,
            "endpoint": self.endpoint,
            "custom_ids": self.custom_ids,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "submitted_at": self.submitted_at,
        }


class _Journal:
    """Append-only JSONL files in ``batch_dir`` (or nothing at all when it is ``None``)."""

    def __init__(self, batch_dir: Path | None) -> None:
        self.batch_dir = batch_dir
        self._files: dict[str, IO[str]] = {}

    def read(self, name: str) -> Iterable[dict[str, Any]]:
        """Every complete JSON object line; a torn last line (a killed write) is skipped."""
        if self.batch_dir is None:
            return
        path = self.batch_dir / name
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    log.warning("%s:%d: skipping an unreadable line", path, number)
                    continue
                if isinstance(row, dict):
                    yield row

    def append(self, name: str, row: dict[str, Any]) -> None:
        if self.batch_dir is None:
            return
        handle = self._files.get(name)
        if handle is None:
            self.batch_dir.mkdir(parents=True, exist_ok=True)
            path = self.batch_dir / name
            handle = path.open("a", encoding="utf-8")
            if path.stat().st_size and not _ends_with_newline(path):
                handle.write("\n")  # end a torn line so the next row is readable
            self._files[name] = handle
        handle.write(json.dumps(row, separators=(",", ":")) + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


class OpenAIBatchTeacher:
    """A :class:`~selfinstruct.teachers.base.Teacher` over the OpenAI Batch API.

    ``batch_dir`` (else ``config.batch_dir``) holds the journal; with neither, nothing is
    persisted. Counters: :attr:`batches_submitted`, :attr:`batch_sizes`,
    :attr:`answered_from_journal`, :attr:`failures`.
    """

    def __init__(
        self,
        config: TeacherConfig,
        *,
        batch_dir: Path | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.config = config
        self.api: Api = config.resolved_api()
        self.model: str = config.model or ""
        self.max_concurrency: int = config.max_concurrency
        self.batch_size = config.batch_size
        self.flush_s = config.batch_flush_s
        self.poll_s = config.batch_poll_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.endpoint = ENDPOINTS[self.api]
        self.batch_dir = batch_dir if batch_dir is not None else config.batch_dir
        self.batches_submitted = 0
        #: sizes of the batches this instance submitted, in order
        self.batch_sizes: list[int] = []
        self.answered_from_journal = 0
        self.failures = 0
        self._key = config.api_key.get_secret_value() if config.api_key is not None else ""
        self.base_url = (config.base_url[0] if config.base_url else DEFAULT_BASE_URL).rstrip("/")
        if len(config.base_url) > 1:
            log.warning("the openai-batch teacher uses only the first base URL, %s", self.base_url)
        self.client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._key or PLACEHOLDER_API_KEY,
            max_retries=0,
            timeout=config.timeout_s,
        )
        self._journal = _Journal(self.batch_dir)
        self._results: dict[str, dict[str, Any]] = {}  # custom_id -> response body
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}  # queued or in a batch
        self._waiters: dict[str, int] = {}  # callers waiting per custom_id
        self._queue: dict[str, dict[str, Any]] = {}  # custom_id -> line, not yet submitted
        self._flush_timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
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
            await self._discover_model()

    async def complete(self, request: Request) -> Completion:
        if self._closed:
            raise TeacherError("the openai-batch teacher is closed")
        if not self._started:
            await self.start()
        try:
            body = request_body(self.api, self.model, request)
        except ValueError as exc:
            raise TeacherError(str(exc)) from None
        cid = custom_id(self.endpoint, body)
        stored = self._results.get(cid)
        if stored is not None:
            self.answered_from_journal += 1
            return self._completion(cid, stored, request, 0.0)
        started = time.perf_counter()
        future = self._pending.get(cid)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[cid] = future
            self._queue[cid] = {
                "custom_id": cid, "method": "POST", "url": self.endpoint, "body": body,
            }  # fmt: skip
        self._waiters[cid] = self._waiters.get(cid, 0) + 1
        try:
            if cid in self._queue:
                self._schedule_flush()
            response = await asyncio.shield(future)
        finally:
            self._waiters[cid] -= 1
            if not self._waiters[cid]:
                del self._waiters[cid]
        return self._completion(cid, response, request, time.perf_counter() - started)

    async def aclose(self) -> None:
        """Stop polling and fail waiting callers. Batches already submitted keep running on
        the server; a new teacher on the same ``batch_dir`` picks them up."""
        self._closed = True
        tasks = list(self._tasks)
        if self._flush_timer is not None:
            tasks.append(self._flush_timer)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fail(list(self._pending), "the openai-batch teacher was closed")
        self._queue.clear()
        self._journal.close()
        await self.client.close()

    # -- journal ---------------------------------------------------------------------------

    def _load(self) -> None:
        for row in self._journal.read(RESULTS_FILE):
            cid, body = row.get("custom_id"), row.get("body")
            if isinstance(cid, str) and isinstance(body, dict):
                self._results[cid] = body
        records: dict[str, dict[str, Any]] = {}
        for row in self._journal.read(BATCHES_FILE):
            batch_id = row.get("batch_id")
            if isinstance(batch_id, str):
                records.setdefault(batch_id, {}).update(
                    {k: v for k, v in row.items() if v is not None}
                )
        resumed = 0
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
            waiting = [c for c in record.custom_ids if c not in self._results]
            loop = asyncio.get_running_loop()
            for cid in waiting:
                self._pending.setdefault(cid, loop.create_future())
            self._spawn(self._poll_and_resolve(record))
            resumed += 1
        if self._results or resumed:
            log.info(
                "openai-batch: %d stored answers, %d unfinished batches resumed from %s",
                len(self._results), resumed, self.batch_dir,
            )  # fmt: skip

    def _record_batch(self, record: BatchRecord) -> None:
        self._journal.append(BATCHES_FILE, record.to_json())

    # -- coalescing ------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if len(self._queue) >= self.batch_size:
            self._flush()
        elif self._flush_timer is None or self._flush_timer.done():
            self._flush_timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.flush_s)
        self._flush_timer = None
        self._flush()

    def _flush(self) -> None:
        """Submit what is queued (callers that gave up are dropped), ``batch_size`` at a time."""
        lines: list[dict[str, Any]] = []
        for cid, line in list(self._queue.items()):
            del self._queue[cid]
            if not self._waiters.get(cid):
                future = self._pending.pop(cid, None)
                if future is not None and not future.done():
                    future.cancel()
                continue
            lines.append(line)
        if self._flush_timer is not None and not self._queue:
            timer, self._flush_timer = self._flush_timer, None
            if timer is not asyncio.current_task():
                timer.cancel()
        for start in range(0, len(lines), self.batch_size):
            self._spawn(self._submit_and_resolve(lines[start : start + self.batch_size]))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one batch -------------------------------------------------------------------------

    async def _submit_and_resolve(self, lines: list[dict[str, Any]]) -> None:
        ids = [line["custom_id"] for line in lines]
        try:
            record = await self._submit(lines)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(ids, f"batch of {len(ids)} not submitted: {self._describe(exc)}")
            return
        await self._poll_and_resolve(record)

    async def _submit(self, lines: list[dict[str, Any]]) -> BatchRecord:
        payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        name = f"selfinstruct-{lines[0]['custom_id']}-{len(lines)}.jsonl"
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
                completion_window=self.config.completion_window,  # type: ignore[arg-type]
                metadata={"source": "selfinstruct"},
            ),
        )
        record = BatchRecord(
            batch_id=batch.id,
            input_file_id=uploaded.id,
            endpoint=self.endpoint,
            custom_ids=[line["custom_id"] for line in lines],
            status="submitted",  # a final status is journaled only once its results are stored
        )
        self._record_batch(record)
        self.batches_submitted += 1
        self.batch_sizes.append(len(lines))
        log.info("submitted batch %s of %d requests", batch.id, len(lines))
        return record

    async def _poll_and_resolve(self, record: BatchRecord) -> None:
        try:
            batch = await self._poll(record)
            answered = await self._collect(record, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(record.custom_ids, f"batch {record.batch_id}: {self._describe(exc)}")
            return
        record.status = batch.status
        record.output_file_id = getattr(batch, "output_file_id", None)
        record.error_file_id = getattr(batch, "error_file_id", None)
        self._record_batch(record)  # after the results: a kill in between only re-downloads
        missing = [c for c in record.custom_ids if c not in answered]
        if missing:
            reason = f"batch {record.batch_id} ended {batch.status!r} with no answer for it"
            errors = getattr(batch, "errors", None)
            first = (getattr(errors, "data", None) or [None])[0]
            if first is not None and getattr(first, "message", None):
                reason += f" ({first.message})"
            self._fail(missing, reason)

    async def _poll(self, record: BatchRecord) -> Any:
        """``batches.retrieve`` every ``batch_poll_s`` until the batch reaches a final status."""
        errors = 0
        while True:
            try:
                batch = await self.client.batches.retrieve(record.batch_id)
                errors = 0
            except openai.OpenAIError as exc:
                if not _retryable(exc):
                    raise
                errors += 1
                if errors > self.config.max_retries:
                    raise
                log.info("polling batch %s failed (%s); retrying", record.batch_id, exc)
                await asyncio.sleep(self._backoff(errors))
                continue
            if batch.status in TERMINAL:
                return batch
            if batch.status != record.status:
                record.status = batch.status
                log.debug("batch %s is %s", record.batch_id, batch.status)
            await asyncio.sleep(self.poll_s)

    async def _collect(self, record: BatchRecord, batch: Any) -> set[str]:
        """Download the output and error files; answer every line found. Returns the ids of
        the lines answered (successfully or not)."""
        wanted = set(record.custom_ids)
        answered: set[str] = set()
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
                    log.warning("batch %s: skipping an unreadable result line", record.batch_id)
                    continue
                cid = row.get("custom_id") if isinstance(row, dict) else None
                if not isinstance(cid, str) or cid not in wanted or cid in answered:
                    continue
                answered.add(cid)
                self._answer(cid, row)
        return answered

    def _answer(self, cid: str, row: dict[str, Any]) -> None:
        response = row.get("response") if isinstance(row.get("response"), dict) else None
        status = response.get("status_code") if response else None
        body = response.get("body") if response else None
        if status == 200 and isinstance(body, dict):
            try:
                parse_body(self.api, body, self.model)
            except ValueError as exc:
                self._fail([cid], f"malformed response in the batch output: {exc}")
                return
            self._results[cid] = body
            self._journal.append(RESULTS_FILE, {"custom_id": cid, "body": body})
            future = self._pending.pop(cid, None)
            if future is not None and not future.done():
                future.set_result(body)
            return
        self._fail([cid], _line_error(row, status, body))

    def _fail(self, ids: Iterable[str], message: str) -> None:
        for cid in ids:
            future = self._pending.pop(cid, None)
            if future is not None and not future.done():
                self.failures += 1
                future.set_exception(TeacherError(self._scrub(message)))
                future.exception()  # retrieved: nobody waiting is not an error worth a warning

    # -- helpers ---------------------------------------------------------------------------

    def _completion(
        self, cid: str, body: dict[str, Any], request: Request, latency_s: float
    ) -> Completion:
        try:
            completion = parse_body(self.api, body, self.model)
        except ValueError as exc:  # a stored body that no longer parses: ask again next time
            self._results.pop(cid, None)
            raise TeacherError(f"{request.stage}: malformed stored response: {exc}") from None
        if latency_s:
            completion = Completion(
                text=completion.text, finish_reason=completion.finish_reason,
                usage=completion.usage, model=completion.model, latency_s=latency_s,
            )  # fmt: skip
        return completion

    async def _discover_model(self) -> None:
        try:
            page = await self.client.models.list(timeout=min(self.config.timeout_s, 30.0))
            ids = [m.id for m in (getattr(page, "data", None) or []) if getattr(m, "id", None)]
        except (openai.OpenAIError, ValueError) as exc:
            raise TeacherUnavailable(self._scrub(f"{self._describe(exc)}; pass --model")) from None
        if not ids:
            raise TeacherUnavailable(f"no model served at {self.base_url}; pass --model")
        self.model = str(ids[0])

    async def _with_retries(self, what: str, call: Any) -> Any:
        """``await call()``, retried on 429/408/5xx/connection errors with backoff."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call()
            except openai.OpenAIError as exc:
                if not _retryable(exc) or attempt > self.config.max_retries:
                    raise
                log.info("could not %s (%s); retry %d", what, self._describe(exc), attempt)
                await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        exponent = min(attempt - 1, 60)
        wait = self.backoff_base_s * 2**exponent + random.uniform(0, self.backoff_base_s)
        return min(wait, self.backoff_max_s)

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code} from {self.base_url}: {_server_message(exc)}"
        if isinstance(exc, openai.APITimeoutError):
            return f"timed out after {self.config.timeout_s:g}s waiting for {self.base_url}"
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot reach {self.base_url}: {_connection_reason(exc)}"
        return f"{type(exc).__name__}: {exc}"

    def _scrub(self, message: str) -> str:
        if self._key:
            message = message.replace(self._key, "***")
        message = " ".join(message.split())
        return message if len(message) <= 500 else message[:497] + "..."


def _line_error(row: dict[str, Any], status: Any, body: Any) -> str:
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
