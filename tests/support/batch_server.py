"""A loopback server for the OpenAI Files and Batches APIs, on top of ScriptedOpenAIServer.

Everything :class:`~tests.support.openai_server.ScriptedOpenAIServer` serves
(models, chat and text completions, scripted faults) plus::

    POST /v1/files                     multipart upload (purpose "batch"), kept in memory
    GET  /v1/files/{id}                the file object
    GET  /v1/files/{id}/content        the bytes
    POST /v1/batches                   validate the input file, then run it in a thread
    GET  /v1/batches/{id}              status, request_counts, output_file_id, error_file_id
    POST /v1/batches/{id}/cancel       cancelling -> cancelled

Each line of a batch goes through the same responder (and queued/random faults) as a live
request (the stage, for :func:`~tests.support.openai_server.request_stage`, is the one in
the line's ``custom_id``): a 2xx reply lands in the output file, an error reply
(``Reply(status=400)``, "500", "drop", "malformed" ...) in the error file.
``batch_delay_s`` keeps every batch ``in_progress`` that long; :meth:`BatchServer.hold`
keeps them there until :meth:`release`;
``batch_outcomes`` (e.g. ``["expired"]``) makes the next batches end that way without output.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.openai_server import (
    Kind,
    RecordedRequest,
    Reply,
    Responder,
    ScriptedOpenAIServer,
    _error_body,
    _Handler,
)

ENDPOINT_KINDS: dict[str, Kind] = {"/v1/chat/completions": "chat", "/v1/completions": "completions"}
BATCH_OUTCOMES = ("failed", "expired", "cancelled")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "file", "bytes": len(self.data),
            "created_at": self.created_at, "filename": self.filename,
            "purpose": self.purpose, "status": "processed",
        }  # fmt: skip


@dataclass
class StoredBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    status: str = "validating"
    created_at: int = field(default_factory=lambda: int(time.time()))
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    cancel_requested: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "created_at": self.created_at,
            "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "request_counts": {
                "total": self.total, "completed": self.completed, "failed": self.failed,
            },
            "metadata": self.metadata,
        }  # fmt: skip


class BatchServer(ScriptedOpenAIServer):
    """:class:`ScriptedOpenAIServer` plus the Files and Batches endpoints (see module doc).

    :attr:`files` and :attr:`batches` hold what was uploaded and created; :meth:`batch_paths`
    lists only the Files/Batches requests (for "nothing new was sent" checks).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        batch_delay_s: float = 0.0,
        batch_outcomes: Iterable[str] = (),
        **options: Any,
    ) -> None:
        super().__init__(responder, **options)
        outcomes = list(batch_outcomes)
        for outcome in outcomes:
            if outcome not in BATCH_OUTCOMES:
                raise ValueError(f"unknown batch outcome {outcome!r}; expected {BATCH_OUTCOMES}")
        self.batch_delay_s = batch_delay_s
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, StoredBatch] = {}
        self._outcomes: deque[str] = deque(outcomes)
        self._go = threading.Event()
        self._go.set()
        self._ids = 0

    @staticmethod
    def _handler_base() -> type[BaseHTTPRequestHandler]:
        return _BatchHandler

    def start(self) -> BatchServer:
        super().start()
        return self

    def __enter__(self) -> BatchServer:
        return self.start()

    def stop(self) -> None:
        self._go.set()  # wake held batches so their threads end
        super().stop()

    # -- scripting -------------------------------------------------------------------------

    def hold(self) -> None:
        """Keep batches created from now on (and those not yet run) ``in_progress``."""
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    def add_batch_outcomes(self, *outcomes: str) -> None:
        with self._lock:
            self._outcomes.extend(outcomes)

    def batch_paths(self) -> list[str]:
        return [p for p in self.paths() if "/files" in p or "/batches" in p]

    def file_lines(self, file_id: str) -> list[dict[str, Any]]:
        """A stored JSONL file's rows (e.g. a batch's input, output or error file)."""
        with self._lock:
            data = self.files[file_id].data
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}-{self._ids:05d}"

    def _store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(self._new_id("file"), filename, purpose, data)
        with self._lock:
            self.files[stored.id] = stored
        return stored

    # -- batches ---------------------------------------------------------------------------

    def create_batch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        endpoint = body.get("endpoint")
        input_id = body.get("input_file_id")
        if endpoint not in ENDPOINT_KINDS:
            return 400, _error_body(400, f"unsupported endpoint {endpoint!r}")
        if body.get("completion_window") != "24h":
            return 400, _error_body(400, "completion_window must be '24h'")
        with self._lock:
            source = self.files.get(str(input_id))
        if source is None:
            return 404, _error_body(404, f"no such file {input_id!r}")
        if source.purpose != "batch":
            return 400, _error_body(400, f"file {input_id} was not uploaded for purpose 'batch'")
        batch = StoredBatch(
            id=self._new_id("batch"),
            input_file_id=source.id,
            endpoint=str(endpoint),
            completion_window="24h",
            metadata=body.get("metadata") if isinstance(body.get("metadata"), dict) else None,
        )
        with self._lock:
            self.batches[batch.id] = batch
        threading.Thread(
            target=self._process, args=(batch, source.data), name=batch.id, daemon=True
        ).start()
        return 200, batch.to_json()

    def cancel_batch(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, _error_body(404, f"no such batch {batch_id!r}")
            if batch.status in ("validating", "in_progress"):
                batch.cancel_requested = True
                batch.status = "cancelling"
            return 200, batch.to_json()

    def _process(self, batch: StoredBatch, data: bytes) -> None:
        lines, problem = _validate(data, batch.endpoint)
        with self._lock:
            if problem is not None:
                batch.status = "failed"
                batch.errors = [problem]
                return
            batch.total = len(lines)
            batch.status = "in_progress" if not batch.cancel_requested else batch.status
        while not self._go.wait(0.02):
            if self._stopping.is_set():
                return
            if batch.cancel_requested:
                break
        if self.batch_delay_s > 0 and self._stopping.wait(self.batch_delay_s):
            return
        with self._lock:
            outcome = self._outcomes.popleft() if self._outcomes else None
            if batch.cancel_requested:
                outcome = "cancelled"
        if outcome is not None:
            with self._lock:
                batch.status = outcome
                if outcome == "failed":
                    batch.errors = [{"code": "scripted", "message": "scripted batch failure"}]
            return
        kind = ENDPOINT_KINDS[batch.endpoint]
        output: list[str] = []
        errors: list[str] = []
        for number, line in enumerate(lines, start=1):
            reply = self.reply_for(kind, line["body"], stage_of(line["custom_id"]))
            request_id = f"req-{batch.id}-{number}"
            if reply.status < 400 and reply.raw_body is None and not reply.drop_connection:
                rendered = self.render(kind, line["body"], reply, number)
                response = {"status_code": reply.status, "request_id": request_id, "body": rendered}
                output.append(_result_line(batch.id, number, line["custom_id"], response, None))
                continue
            if reply.raw_body is not None or reply.drop_connection:
                status, message = 500, "the model produced an unreadable answer"
            else:
                status, message = reply.status, reply.text or f"scripted error {reply.status}"
            response = {
                "status_code": status, "request_id": request_id,
                "body": _error_body(status, message),
            }  # fmt: skip
            errors.append(_result_line(batch.id, number, line["custom_id"], response, None))
        output_file = self._store(f"{batch.id}_output.jsonl", "batch_output", _jsonl(output))
        error_file = self._store(f"{batch.id}_error.jsonl", "batch_output", _jsonl(errors))
        with self._lock:
            batch.output_file_id = output_file.id if output else None
            batch.error_file_id = error_file.id if errors else None
            batch.completed = len(output)
            batch.failed = len(errors)
            batch.status = "completed"


def stage_of(custom_id: Any) -> str | None:
    """The stage in a selfinstruct line id (``si-<hash>-<stage>``), else ``None``."""
    parts = str(custom_id).split("-", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "si" and parts[2] else None


def _jsonl(rows: list[str]) -> bytes:
    return "".join(row + "\n" for row in rows).encode()


def _result_line(
    batch_id: str, number: int, cid: str, response: dict[str, Any] | None, error: Any
) -> str:
    row = {"id": f"batch_req-{batch_id}-{number}", "custom_id": cid, "response": response}
    row["error"] = error
    return json.dumps(row)


def _validate(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The input file's lines, or the first problem (as a batch ``errors`` entry)."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(data.decode(errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue

        def problem(code: str, message: str, line: int = number) -> dict[str, Any]:
            return {"code": code, "message": message, "line": line, "param": None}

        try:
            row = json.loads(raw)
        except ValueError:
            return [], problem("invalid_json_line", "not a JSON line")
        if not isinstance(row, dict) or not isinstance(row.get("body"), dict):
            return [], problem("invalid_request", "a line needs an object 'body'")
        cid = row.get("custom_id")
        if not isinstance(cid, str) or not cid:
            return [], problem("missing_required_parameter", "a line needs a custom_id")
        if cid in seen:
            return [], problem("duplicate_custom_id", f"custom_id {cid!r} is used twice")
        if row.get("method") != "POST":
            return [], problem("invalid_method", "method must be POST")
        if row.get("url") != endpoint:
            return [], problem("invalid_url", f"url must be the batch's endpoint {endpoint}")
        body = row["body"]
        if body.get("n") not in (None, 1):
            return [], problem("invalid_request", "n > 1 is not supported here")
        if isinstance(body.get("prompt"), list):
            return [], problem("invalid_request", "'prompt' must be a string")
        models.add(str(body.get("model")))
        seen.add(cid)
        lines.append(row)
    if not lines:
        return [], {"code": "empty_file", "message": "the input file has no requests", "line": None}
    if len(models) > 1:
        message = f"every line must use the same model, got {sorted(models)}"
        return [], {"code": "mixed_models", "message": message, "line": None}
    return lines, None


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``name -> (filename, bytes)`` for each part of a multipart/form-data body."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    parts: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        parts[str(name)] = (part.get_filename(), payload)
    return parts


class _BatchHandler(_Handler):
    server_ref: BatchServer

    def _route(self) -> list[str]:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1/"):
            path = path[3:]
        return [p for p in path.split("/") if p]

    def do_GET(self) -> None:
        server = self.server_ref
        parts = self._route()
        if not parts or parts[0] not in ("files", "batches"):
            super().do_GET()
            return
        server._record(RecordedRequest(self.path.split("?", 1)[0], {}, self._headers()))
        with server._lock:
            if parts[0] == "files" and len(parts) in (2, 3):
                stored = server.files.get(parts[1])
                if stored is None:
                    pass
                elif len(parts) == 2:
                    self._send_json(200, stored.to_json())
                    return
                elif parts[2] == "content":
                    self._send(200, stored.data)
                    return
            elif parts[0] == "batches" and len(parts) == 2:
                batch = server.batches.get(parts[1])
                if batch is not None:
                    self._send_json(200, batch.to_json())
                    return
        self._send_json(404, _error_body(404, f"no such object at {self.path}"))

    def do_POST(self) -> None:
        server = self.server_ref
        parts = self._route()
        if not parts or parts[0] not in ("files", "batches"):
            super().do_POST()
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if parts == ["files"]:
            server._record(RecordedRequest(path, {}, self._headers()))
            form = _multipart(self.headers.get("Content-Type") or "", raw)
            if "file" not in form:
                self._send_json(400, _error_body(400, "a multipart 'file' part is required"))
                return
            purpose = form.get("purpose", (None, b""))[1].decode(errors="replace")
            if purpose not in ("batch", "fine-tune", "assistants", "user_data"):
                self._send_json(400, _error_body(400, f"unknown purpose {purpose!r}"))
                return
            filename, data = form["file"]
            stored = server._store(filename or "upload.jsonl", purpose, data)
            self._send_json(200, stored.to_json())
            return
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(raw or b"{}")
        server._record(
            RecordedRequest(path, body if isinstance(body, dict) else {}, self._headers())
        )
        if not isinstance(body, dict):
            self._send_json(400, _error_body(400, "request body is not a JSON object"))
            return
        if parts == ["batches"]:
            status, answer = server.create_batch(body)
        elif len(parts) == 3 and parts[0] == "batches" and parts[2] == "cancel":
            status, answer = server.cancel_batch(parts[1])
        else:
            status, answer = 404, _error_body(404, f"unknown path {path}")
        self._send_json(status, answer)


__all__ = ["BatchServer", "Reply", "StoredBatch", "StoredFile"]
