"""The OpenAI wire format, shared by the online (``openai``) and Batch API (``openai-batch``)
teachers: the connection settings, the request body, the ``X-Selfinstruct-Stage`` header,
response parsing, error classification and messages, the retry policy and model discovery.

A body never holds ``n`` > 1 or a list ``prompt`` (llama.cpp's server rejects both), and no
message built here ever holds the API key (:func:`scrub`).
"""

from __future__ import annotations

import email.utils
import math
import os
import random
import socket
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import openai
from pydantic import Field, SecretStr, field_validator

from selfinstruct.errors import TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers import json_codec
from selfinstruct.teachers.base import Api, Completion, Request, ResponseSchema, TeacherSettings
from selfinstruct.teachers.lean_client import LeanAsyncOpenAI

#: sent when no API key is configured: local servers need none, but the SDK insists on one
PLACEHOLDER_API_KEY = "not-needed"
#: the URL the SDK uses when no base URL is configured
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: the header naming the stage a request serves (for server logs, proxies and test servers)
STAGE_HEADER = "X-Selfinstruct-Stage"
#: the path each API posts to (as a Batch API line's ``url``)
API_PATHS: dict[Api, str] = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}

#: how a server takes a JSON schema in ``response_format``: OpenAI's and vLLM's
#: ``{"type": "json_schema", ...}``, or llama-cpp-python's ``{"type": "json_object", "schema"}``
SchemaStyle = Literal["json_schema", "json_object"]

#: the SDK's HTTP client: its aiohttp one (the ``openai[aiohttp]`` extra), its default httpx
#: one, or ``auto``: aiohttp unless it is missing or a proxy variable is set (aiohttp ignores
#: ``HTTPS_PROXY`` and the like, which httpx honours)
HttpClient = Literal["auto", "aiohttp", "httpx"]

#: what a failed attempt says about its endpoint: ``down`` counts towards taking it out of
#: rotation, ``alive`` means it answered (a 429, another 4xx, a malformed body)
EndpointHealth = Literal["down", "alive"]


class OpenAIClientSettings(TeacherSettings):
    """The fields of every teacher that speaks the OpenAI API."""

    api: Api = Field(default="chat", description="chat (messages) or completions (a prompt).")
    base_url: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible endpoint(s), e.g. http://127.0.0.1:8000/v1 (unset: OpenAI).",
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key (default: $OPENAI_API_KEY); never written anywhere."
    )
    http_client: HttpClient = Field(
        default="auto",
        description="The SDK's HTTP client: aiohttp (~0.4 ms less CPU a request), httpx (its "
        "default), auto (aiohttp unless missing or a proxy variable is set).",
    )

    @field_validator("base_url", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value

    def key(self) -> str:
        """The API key's text ('' when none is configured)."""
        return self.api_key.get_secret_value() if self.api_key is not None else ""


class MalformedResponse(Exception):
    """The server answered 2xx, but not with a usable completion."""


# -- requests -------------------------------------------------------------------------------


def response_format(schema: ResponseSchema, style: SchemaStyle = "json_schema") -> dict[str, Any]:
    """A request's JSON schema in the ``response_format`` form ``style`` names."""
    if style == "json_object":
        return {"type": "json_object", "schema": schema.schema}
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.name, "strict": True, "schema": schema.schema},
    }


def request_body(
    api: Api, model: str, request: Request, schema_style: SchemaStyle = "json_schema"
) -> dict[str, Any]:
    """The JSON body for one request: one prompt (or message list); ``n`` only when > 1;
    ``response_format`` (in ``schema_style``) when the request carries a JSON schema.

    Raises ValueError when the request does not have the shape ``api`` needs."""
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
    if request.n > 1:
        body["n"] = request.n
    if request.response_schema is not None:
        body["response_format"] = response_format(request.response_schema, schema_style)
    return body


def request_headers(request: Request) -> dict[str, str]:
    """The extra headers every request carries: the stage it serves."""
    return {STAGE_HEADER: str(request.stage)}


# -- responses ------------------------------------------------------------------------------


def loads(raw: bytes | str) -> Any:
    """A response body as JSON; :class:`MalformedResponse` when it is not JSON."""
    try:
        return json_codec.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise MalformedResponse(f"not JSON: {text[:80]!r}") from None


def _field(value: Any, name: str) -> Any:
    """``value[name]`` for JSON objects, ``value.name`` for the SDK's response objects."""
    if isinstance(value, dict):
        return value.get(name)
    return getattr(value, name, None)


def choice_count(response: Any) -> int:
    choices = _field(response, "choices")
    return len(choices) if isinstance(choices, list) else 0


def parse_response(
    api: Api, response: Any, fallback_model: str, latency_s: float = 0.0
) -> Completion:
    """A chat.completion / text_completion (SDK object or JSON object) as a Completion: its
    first choice, the others in ``more``. Raises :class:`MalformedResponse` when the first
    choice is not usable."""
    if isinstance(response, str):  # the SDK hands back raw text when the body is not JSON
        raise MalformedResponse(f"not JSON: {response[:80]!r}")
    if response is None or isinstance(response, (list, int, float, bool)):
        raise MalformedResponse(f"response body is not a JSON object: {str(response)[:80]!r}")
    choices = _field(response, "choices")
    if not choices or not isinstance(choices, list) or choices[0] is None:
        raise MalformedResponse("no choices")
    first = choices[0]
    text = _choice_text(api, first)
    more = tuple(
        (_choice_text(api, choice), _field(choice, "finish_reason"))
        for choice in choices[1:]
        if choice is not None
    )
    usage = _field(response, "usage")
    return Completion(
        text=text,
        finish_reason=_field(first, "finish_reason"),
        more=more,
        usage=Usage(
            prompt_tokens=int(_field(usage, "prompt_tokens") or 0) if usage else 0,
            completion_tokens=int(_field(usage, "completion_tokens") or 0) if usage else 0,
        ),
        model=str(_field(response, "model") or fallback_model),
        latency_s=latency_s,
    )


def _choice_text(api: Api, choice: Any) -> str:
    if api == "chat":
        message = _field(choice, "message")
        if message is None or isinstance(message, (str, list)):
            raise MalformedResponse("choice has no message")
        text = _field(message, "content")
    else:
        text = _field(choice, "text")
    return text if isinstance(text, str) else ""


# -- errors ---------------------------------------------------------------------------------


def is_retryable(exc: BaseException) -> bool:
    """Whether asking again may help: 408, 429, any 5xx, connection errors and timeouts, and
    malformed answers. Other 4xx (a bad key, a bad request) fail at once."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 429) or exc.status_code >= 500
    return isinstance(
        exc, (openai.APIConnectionError, openai.APIResponseValidationError, MalformedResponse)
    )


def endpoint_health(exc: BaseException) -> EndpointHealth:
    """``down`` for a connection error, timeout, 408 or 5xx; ``alive`` when it answered."""
    if isinstance(exc, openai.APIStatusError):
        return "down" if exc.status_code == 408 or exc.status_code >= 500 else "alive"
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return "down"
    return "alive"


def describe(exc: BaseException, url: str, timeout_s: float) -> str:
    """One line naming the endpoint and what went wrong (status and the server's message)."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code} from {url}: {server_message(exc)}"
    if isinstance(exc, openai.APITimeoutError) and _timed_out(exc):
        return f"timed out after {timeout_s:g}s waiting for {url}"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach {url}: {connection_reason(exc)}"
    if isinstance(exc, (MalformedResponse, openai.APIResponseValidationError)):
        return f"malformed response from {url}: {exc}"
    return f"{type(exc).__name__} from {url}: {exc}"


def scrub(message: str, key: str) -> str:
    """One line, at most 500 characters, with the API key (if any) masked."""
    if key:
        message = message.replace(key, "***")
    message = " ".join(message.split())
    return message if len(message) <= 500 else message[:497] + "..."


def server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if message:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return exc.message


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


def _timed_out(exc: BaseException) -> bool:
    """The SDK's timeout, unless the SDK's aiohttp client called a refused or dropped
    connection a timeout (its exception map turns every aiohttp connection error into one)."""
    for cause in _causes(exc):
        if type(cause).__module__.partition(".")[0] == "aiohttp":
            return isinstance(cause, TimeoutError)
    return True


def connection_reason(exc: BaseException) -> str:
    """The root cause of a connection error in a few words, e.g. ``connection refused``."""
    reason = ""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) and cause.strerror:
            return cause.strerror.lower()
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno).lower()
        if str(cause) and str(cause) not in ("Connection error.", "Request timed out."):
            reason = str(cause)
    return reason or "connection error"


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds a 429/503 asks to wait (``retry-after-ms``, ``retry-after`` seconds or HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if not value:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            seconds = (when - datetime.now(timezone.utc)).total_seconds()
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: the n-th retry waits about ``base_s * 2**(n-1)`` plus up
    to ``base_s``, at most ``max_s``; a server's ``Retry-After`` wins, capped at
    ``max_retry_after_s``. ``max_retries`` retries follow the first attempt."""

    max_retries: int = 6
    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 60.0

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """After failed attempt number ``attempt`` (1-based): try again?"""
        return attempt <= self.max_retries and is_retryable(exc)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        asked = retry_after(exc)
        if asked is not None and asked > 0:
            return min(asked, self.max_retry_after_s)
        exponent = min(attempt - 1, 60)
        return min(self.base_s * 2**exponent + random.uniform(0, self.base_s), self.max_s)


# -- model discovery ------------------------------------------------------------------------


async def discover_model(
    clients: Sequence[tuple[str, openai.AsyncOpenAI]], timeout_s: float, key: str
) -> tuple[str, str]:
    """The first model listed (``GET /models``) by the first endpoint that lists one, as
    ``(model, url)``; :class:`TeacherUnavailable` saying why for each endpoint otherwise."""
    reasons: list[str] = []
    for url, client in clients:
        try:
            page = await client.models.list(timeout=min(timeout_s, 30.0))
            ids = [m.id for m in (getattr(page, "data", None) or []) if getattr(m, "id", None)]
        except openai.APIStatusError as exc:
            problem = describe(exc, url, timeout_s)
            reasons.append(f"no model list at {url} ({problem}); pass --model")
            continue
        except (openai.APIError, ValueError) as exc:
            reasons.append(describe(exc, url, timeout_s))
            continue
        if ids:
            return str(ids[0]), url
        reasons.append(f"no model served at {url}; pass --model")
    raise TeacherUnavailable(scrub("; ".join(reasons), key))


def make_client(
    url: str, key: str, timeout_s: float, http_client: HttpClient = "auto"
) -> LeanAsyncOpenAI:
    """An SDK client with its own retries off (the teachers retry, with :class:`RetryPolicy`),
    on the HTTP client ``http_client`` picks (:data:`HttpClient`)."""
    transport: dict[str, Any] = {}
    if http_client != "httpx" and (http_client == "aiohttp" or _aiohttp_by_default()):
        try:  # the SDK's aiohttp client (its ``aiohttp`` extra, in recent SDK versions)
            from selfinstruct.teachers.aiohttp_transport import WholeReplyTransport

            transport["http_client"] = openai.DefaultAioHttpClient(transport=WholeReplyTransport())
        except (RuntimeError, AttributeError, ImportError):  # not installed, or an older SDK
            if http_client == "aiohttp":
                raise TeacherUnavailable(
                    "teacher.http_client=aiohttp needs aiohttp: pip install 'openai[aiohttp]'"
                ) from None
    return LeanAsyncOpenAI(
        base_url=url, api_key=key or PLACEHOLDER_API_KEY, max_retries=0, timeout=timeout_s,
        **transport,
    )  # fmt: skip


def _aiohttp_by_default() -> bool:
    """``auto`` picks aiohttp unless a proxy variable is set (``no_proxy`` alone is none)."""
    return not any(scheme != "no" for scheme in urllib.request.getproxies_environment())
