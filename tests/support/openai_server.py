"""A scripted OpenAI-compatible HTTP server on 127.0.0.1: a fake model for fast, repeatable tests.

It speaks the parts of the OpenAI API a teacher uses (``GET /v1/models``,
``POST /v1/chat/completions``, ``POST /v1/completions``, non-streaming) over real HTTP,
so the code under test runs its real client stack. What it answers is up to you::

    def responder(kind, body):             # kind is "chat" or "completions"
        return Reply(text="Task 1: Write a haiku about rain.")

    with ScriptedOpenAIServer(responder, faults=["429", "500"]) as server:
        ...  # point a client at server.base_url; the first two requests fail, then it answers
        assert server.requests[0].headers["authorization"] == "Bearer sk-..."

Faults can be scripted per request (``Reply(status=503)``, ``Reply(drop_connection=True)``,
``Reply(raw_body=b"{not json")`` ...), queued by name in ``faults`` (served first, in order)
or drawn at random with ``fault_rate`` from a seeded RNG (see :data:`FAULT_KINDS`).
``latency_s`` delays every answer (for throughput benchmarks); ``reject_list_prompts`` and
``ignore_n`` mimic llama.cpp's server. Stdlib only: one thread per connection.

The stage a request serves (its ``X-Selfinstruct-Stage`` header; for a Batch API line, the
stage in its ``custom_id``) is what :func:`request_stage` returns while the responder runs,
so a responder keeps the two-argument signature and may still answer per stage.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple

Kind = Literal["chat", "completions"]

#: Fault names accepted in ``faults`` and drawn by ``fault_rate``:
#: HTTP errors ("429" carries a ``Retry-After`` header), "timeout" (answers only after
#: ``timeout_delay_s``), "drop" (closes the socket without answering), "malformed" (invalid
#: JSON), "no_choices" (``"choices": []``), "empty" (empty content), "length" (the text cut
#: in half, finish_reason "length") and "content_filter" (empty, finish_reason "content_filter").
FAULT_KINDS: tuple[str, ...] = (
    "429", "500", "502", "503", "504", "timeout", "drop", "malformed",
    "no_choices", "empty", "length", "content_filter",
)  # fmt: skip


@dataclass(frozen=True)
class Reply:
    """What the server answers to one completion request.

    With ``status`` >= 400 the answer is an OpenAI-style error body whose message is ``text``.
    ``prompt_tokens`` / ``completion_tokens`` left ``None`` are counted as whitespace-separated
    words. ``choices`` is how many (identical) choices to return; 0 returns an empty list.
    ``raw_body`` is sent verbatim instead of JSON; ``drop_connection`` closes the socket unanswered.
    """

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    choices: int = 1
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    raw_body: bytes | None = None
    drop_connection: bool = False
    #: the texts of choices 2, 3, ... when ``n`` > 1 is honoured (default: ``text`` again)
    more_texts: tuple[str, ...] = ()


class RecordedRequest(NamedTuple):
    """One request as received. Header names are lower-cased; ``authorization`` is kept."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


Responder = Callable[[Kind, dict[str, Any]], "Reply | str"]

#: the header naming the stage a request serves (sent by selfinstruct's online teachers)
STAGE_HEADER = "x-selfinstruct-stage"
_current = threading.local()


def request_stage() -> str | None:
    """The stage of the request being answered on this thread (``None``: it named none)."""
    return getattr(_current, "stage", None)


def prompt_text(kind: Kind, body: dict[str, Any]) -> str:
    """The request's prompt as one string (chat messages' contents joined by newlines)."""
    if kind == "chat":
        return "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
    prompt = body.get("prompt", "")
    return "\n".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt)


def echo_responder(kind: Kind, body: dict[str, Any]) -> Reply:
    """The default: answers ``echo: <last message or prompt line>``."""
    if kind == "chat":
        messages = body.get("messages") or [{}]
        last = str(messages[-1].get("content") or "")
    else:
        last = prompt_text(kind, body)
    lines = last.strip().splitlines() or [""]
    return Reply(text=f"echo: {lines[-1]}")


def fault_reply(kind: str, normal: Reply, *, retry_after_s: float, timeout_delay_s: float) -> Reply:
    """The :class:`Reply` for the named fault; ``normal`` is what the responder would have said."""
    if kind == "429":
        return Reply(
            text="Rate limit reached; slow down.", status=429,
            headers={"Retry-After": f"{retry_after_s:g}"},
        )  # fmt: skip
    if kind in ("500", "502", "503", "504"):
        return Reply(text=f"scripted server error {kind}", status=int(kind))
    if kind == "timeout":
        return replace(normal, delay_s=timeout_delay_s)
    if kind == "drop":
        return Reply(drop_connection=True)
    if kind == "malformed":
        return Reply(raw_body=b'{"id": "cmpl-broken", "object": "text_completion", "choices": [')
    if kind == "no_choices":
        return replace(normal, choices=0)
    if kind == "empty":
        return replace(normal, text="", completion_tokens=0)
    if kind == "length":
        return replace(normal, text=normal.text[: len(normal.text) // 2], finish_reason="length")
    if kind == "content_filter":
        return replace(normal, text="", finish_reason="content_filter", completion_tokens=0)
    raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")


def cut_at_stop(text: str, stop: Any) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string (``stop`` is a str or a list)."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    cut = min((i for s in stops if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


class ScriptedOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 (a free port) answering from a script.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`). Every request is
    appended to :attr:`requests`; :attr:`faults_served` lists the injected faults in order;
    :attr:`max_in_flight` is the largest number of completion requests handled at once.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        models: Sequence[str] = ("scripted-model",),
        faults: Iterable[Reply | str] = (),
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = FAULT_KINDS,
        seed: int = 0,
        latency_s: float = 0.0,
        retry_after_s: float = 0.05,
        timeout_delay_s: float = 2.0,
        reject_list_prompts: bool = False,
        ignore_n: bool = False,
    ) -> None:
        queued = list(faults)
        for kind in [*fault_kinds, *(f for f in queued if isinstance(f, str))]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        self.responder: Responder = responder or echo_responder
        self.models = list(models)
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.latency_s = latency_s
        self.retry_after_s = retry_after_s
        self.timeout_delay_s = timeout_delay_s
        self.reject_list_prompts = reject_list_prompts
        self.ignore_n = ignore_n
        self.requests: list[RecordedRequest] = []
        self.faults_served: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[Reply | str] = deque(queued)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._port: int | None = None  # kept after stop(), so messages can still name the URL
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what an OpenAI client takes as ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedOpenAIServer:
        if self._httpd is not None:
            return self
        handler = type("Handler", (self._handler_base(),), {"server_ref": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler, bind_and_activate=False)
        httpd.request_queue_size = 1024  # bursts of hundreds of connections must not be refused
        httpd.daemon_threads = True
        httpd.server_bind()
        httpd.server_activate()
        self._httpd = httpd
        self._port = int(httpd.server_address[1])
        self._stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"scripted-openai-{self.port}", daemon=True,
        )  # fmt: skip
        self._thread.start()
        return self

    @staticmethod
    def _handler_base() -> type[BaseHTTPRequestHandler]:
        """The request handler class; a subclass serving more endpoints returns its own."""
        return _Handler

    def stop(self) -> None:
        """Stop serving, wake any delayed answers and close every open connection."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------

    def add_faults(self, *faults: Reply | str) -> None:
        """Queue more faults, served (in order) before any normal answer."""
        with self._lock:
            self._faults.extend(faults)

    def paths(self) -> list[str]:
        """The path of every request received so far, in order."""
        with self._lock:
            return [r.path for r in self.requests]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_fault(self) -> Reply | str | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self.fault_rate > 0 and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.fault_kinds)
            return None

    def _enter(self) -> int:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._counter += 1
            return self._counter

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def reply_for(self, kind: Kind, body: dict[str, Any], stage: str | None = None) -> Reply:
        """The reply to send: a queued or random fault if any, else the responder's answer
        (given ``stage`` through :func:`request_stage`)."""
        if (
            self.reject_list_prompts
            and kind == "completions"
            and isinstance(body.get("prompt"), list)
        ):
            return Reply(text="llama.cpp-style server: 'prompt' must be a string", status=500)
        fault = self._next_fault()
        if isinstance(fault, Reply):
            with self._lock:
                self.faults_served.append(f"reply:{fault.status}")
            return fault
        _current.stage = stage
        try:
            answer = self.responder(kind, body)
        finally:
            _current.stage = None
        normal = Reply(text=answer) if isinstance(answer, str) else answer
        if fault is None:
            return normal
        with self._lock:
            self.faults_served.append(fault)
        return fault_reply(
            fault, normal, retry_after_s=self.retry_after_s, timeout_delay_s=self.timeout_delay_s
        )

    def render(self, kind: Kind, body: dict[str, Any], reply: Reply, number: int) -> dict[str, Any]:
        """The OpenAI-shaped JSON for a successful ``reply``."""
        text = cut_at_stop(reply.text, body.get("stop"))
        count = reply.choices
        if count == 1 and not self.ignore_n:
            count = max(1, int(body.get("n") or 1))
        words = len(text.split())
        prompt_tokens = reply.prompt_tokens
        if prompt_tokens is None:
            prompt_tokens = len(prompt_text(kind, body).split())
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = words * count
        texts = [text] + [
            cut_at_stop(reply.more_texts[(i - 1) % len(reply.more_texts)], body.get("stop"))
            if reply.more_texts
            else text
            for i in range(1, count)
        ]
        if kind == "chat":
            choices: list[dict[str, Any]] = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": texts[i]},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
                for i in range(count)
            ]
        else:
            choices = [
                {
                    "index": i,
                    "text": texts[i],
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
                for i in range(count)
            ]
        return {
            "id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-scripted-{number}",
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": body.get("model") or (self.models[0] if self.models else "scripted-model"),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class _QuietServer(ThreadingHTTPServer):
    """Clients that vanish mid-request (a killed process, a cancelled call) are normal here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 429:
        kind = "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    server_ref: ScriptedOpenAIServer
    # headers and body go out in separate writes: without this, Nagle's algorithm holds the
    # body for the client's delayed ACK (~40 ms a request on Linux)
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server_ref._lock:
            self.server_ref._connections.add(self.connection)

    def finish(self) -> None:
        with self.server_ref._lock:
            self.server_ref._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (e.g. its timeout fired) and closed the socket
            self.close_connection = True

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def do_GET(self) -> None:
        server = self.server_ref
        path = self.path.split("?", 1)[0].rstrip("/")
        server._record(RecordedRequest(path, {}, self._headers()))
        if path in ("/v1/models", "/models"):
            created = int(time.time())
            data = [
                {"id": name, "object": "model", "created": created, "owned_by": "scripted"}
                for name in server.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, _error_body(404, f"unknown path {path}"))

    def do_POST(self) -> None:
        server = self.server_ref
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        server._record(
            RecordedRequest(path, body if isinstance(body, dict) else {}, self._headers())
        )
        kind: Kind
        if path in ("/v1/chat/completions", "/chat/completions"):
            kind = "chat"
        elif path in ("/v1/completions", "/completions"):
            kind = "completions"
        else:
            self._send_json(404, _error_body(404, f"unknown path {path}"))
            return
        if not isinstance(body, dict):
            self._send_json(400, _error_body(400, "request body is not a JSON object"))
            return
        number = server._enter()
        try:
            self._answer(kind, body, number)
        finally:
            server._leave()

    def _answer(self, kind: Kind, body: dict[str, Any], number: int) -> None:
        server = self.server_ref
        reply = server.reply_for(kind, body, self.headers.get(STAGE_HEADER))
        delay = server.latency_s + reply.delay_s
        if delay > 0 and server._stopping.wait(delay):
            reply = Reply(drop_connection=True)  # stopping: do not keep the client waiting
        if reply.drop_connection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.raw_body is not None:
            self._send(reply.status, reply.raw_body, reply.headers)
        elif reply.status >= 400:
            message = reply.text or f"scripted error {reply.status}"
            self._send_json(reply.status, _error_body(reply.status, message), reply.headers)
        else:
            self._send_json(reply.status, server.render(kind, body, reply, number), reply.headers)
