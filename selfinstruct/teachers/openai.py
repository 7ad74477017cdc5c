"""The OpenAI-compatible teacher: OpenAI itself, vLLM's or llama.cpp's server, any ``/v1`` API.

Transport only, with the official ``openai`` SDK (``AsyncOpenAI``). The SDK's own retries are
off; this module retries (tenacity) on 429, 408, any 5xx, timeouts, connection errors and
malformed answers (unparseable body, no choices), with exponential backoff and jitter, and
waits what a ``Retry-After`` header asks. Other 4xx fail at once.

Requests are bounded by an :class:`~selfinstruct.teachers.adaptive.AdaptiveLimiter` (a
request keeps its slot while it backs off, so a rate-limited server sees less load, not more):
with ``adaptive_concurrency`` its limit moves AIMD-style within ``[1, max_concurrency]``
(halved on a 429, grown while latency holds), else it is fixed at ``max_concurrency``. They are
spread over the configured base URLs by an :class:`~selfinstruct.teachers.endpoints.EndpointPool`
(fewest in flight first, an optional per-endpoint cap, and endpoints that keep failing taken out
of rotation for a cool-down; see :meth:`OpenAITeacher.endpoint_stats`). It never sends ``n`` > 1
or a list ``prompt`` (llama.cpp's server rejects both). No error message ever holds the API key.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from selfinstruct.config import TeacherConfig
from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.records import Usage
from selfinstruct.teachers.adaptive import AdaptiveLimiter
from selfinstruct.teachers.base import Api, Completion, Request
from selfinstruct.teachers.endpoints import EndpointPool, NoEndpointAvailable, Outcome

log = logging.getLogger(__name__)

#: sent when no API key is configured: local servers need none, but the SDK insists on one
PLACEHOLDER_API_KEY = "not-needed"
#: the URL the SDK uses when no base URL is configured
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: concurrent requests per SDK client: httpx's connection pool costs O(connections) CPU per
#: request, so high concurrency is spread over several clients (shards) per base URL
REQUESTS_PER_CLIENT = 32


@dataclass(frozen=True)
class OpenAICompletion(Completion):
    """A :class:`Completion` that also says how many choices the server returned (only the
    first is used; more than one means the server ignored that ``n`` was never sent)."""

    choices: int = 1


class _Malformed(Exception):
    """The server answered 2xx, but not with a usable completion."""


class _NoEndpoint(Exception):
    """Every endpoint was out of rotation (or at its cap) for as long as an attempt may wait."""


class OpenAITeacher:
    """A :class:`~selfinstruct.teachers.base.Teacher` over the OpenAI (or a compatible) API.

    ``backoff_base_s`` / ``backoff_max_s`` shape the exponential backoff (the n-th retry waits
    about ``base * 2**(n-1)`` plus up to ``base`` of jitter, at most ``max``);
    ``max_retry_after_s`` caps what a server's ``Retry-After`` can make it wait.
    With several base URLs, ``failure_threshold`` consecutive connection errors, timeouts or
    5xx take an endpoint out of rotation for ``cooldown_base_s`` (doubling up to
    ``cooldown_max_s``). Counters for progress displays: :attr:`in_flight`,
    :attr:`requests_sent`, :attr:`retries`, :attr:`failures`, :attr:`concurrency_limit` and
    :meth:`endpoint_stats`. :attr:`max_concurrency` stays the upper bound.
    """

    def __init__(
        self,
        config: TeacherConfig,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        failure_threshold: int = 3,
        cooldown_base_s: float = 2.0,
        cooldown_max_s: float = 60.0,
    ) -> None:
        self.config = config
        self.api: Api = config.resolved_api()
        self.model: str = config.model or ""
        self.max_concurrency: int = config.max_concurrency
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.requests_sent = 0
        self.retries = 0
        self.failures = 0
        self._key = config.api_key.get_secret_value() if config.api_key is not None else ""
        self.limiter = AdaptiveLimiter(config.max_concurrency, adaptive=config.adaptive_concurrency)
        self._urls = list(dict.fromkeys(u.rstrip("/") for u in config.base_url)) or [
            DEFAULT_BASE_URL
        ]
        per_url = min(config.max_concurrency, config.max_concurrency_per_endpoint or 1 << 30)
        shards = math.ceil(per_url / REQUESTS_PER_CLIENT)
        self.pool: EndpointPool[openai.AsyncOpenAI] = EndpointPool(
            [(url, [self._client(url) for _ in range(shards)]) for url in self._urls],
            max_in_flight_per_endpoint=config.max_concurrency_per_endpoint,
            failure_threshold=failure_threshold,
            cooldown_base_s=cooldown_base_s,
            cooldown_max_s=cooldown_max_s,
        )

    def _client(self, url: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=url,
            api_key=self._key or PLACEHOLDER_API_KEY,
            max_retries=0,
            timeout=self.config.timeout_s,
        )

    # -- counters --------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """HTTP requests on the wire right now, over all endpoints."""
        return self.pool.in_flight

    @property
    def concurrency_limit(self) -> int:
        """How many requests may run at once now (moves when adaptive; <= max_concurrency)."""
        return self.limiter.limit

    def endpoint_stats(self) -> dict[str, dict[str, int | bool | float]]:
        """Per base URL: sent, ok, failed, in_flight, healthy, ejections, cooldown_left_s,
        mean_latency_s (attempts, retries included). Never holds a key."""
        return self.pool.stats()

    @property
    def base_urls(self) -> list[str]:
        return list(self._urls)

    # -- Teacher protocol ------------------------------------------------------------------

    async def start(self) -> None:
        """Discover the served model (``GET /models``) when the config names none."""
        if self.model:
            return
        timeout = min(self.config.timeout_s, 30.0)
        reasons: list[str] = []
        for endpoint in self.pool.endpoints:  # one client per URL
            try:
                page = await endpoint.clients[0].models.list(timeout=timeout)
                ids = [m.id for m in (getattr(page, "data", None) or []) if getattr(m, "id", None)]
            except openai.APIStatusError as exc:
                reasons.append(
                    f"no model list at {endpoint.url} ({self._describe(exc, endpoint.url)}); "
                    "pass --model"
                )
                continue
            except (openai.APIError, ValueError) as exc:
                reasons.append(self._describe(exc, endpoint.url))
                continue
            if ids:
                self.model = str(ids[0])
                log.info("discovered model %s at %s", self.model, endpoint.url)
                return
            reasons.append(f"no model served at {endpoint.url}; pass --model")
        raise TeacherUnavailable(self._scrub("; ".join(reasons)))

    async def complete(self, request: Request) -> Completion:
        """One request, retried on transient failures; TeacherError when it fails for good."""
        kwargs = self._arguments(request)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.config.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async with self.limiter.slot():
            try:
                return await retrying(self._attempt, kwargs, [])
            except (openai.OpenAIError, _Malformed, _NoEndpoint, ValueError) as exc:
                self.failures += 1
                url = getattr(exc, "_teacher_url", self._urls[0])
                message = self._describe(exc, url)
                if _retryable(exc):
                    attempts = retrying.statistics.get("attempt_number", 1)
                    message = (
                        f"{request.stage} request to {self.model or 'the teacher'} failed after "
                        f"{attempts} attempt{'s' if attempts != 1 else ''}: {message}"
                    )
                raise TeacherError(self._scrub(message)) from None

    async def aclose(self) -> None:
        for endpoint in self.pool.endpoints:
            for client in endpoint.clients:
                await client.close()

    # -- one attempt -----------------------------------------------------------------------

    def _arguments(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if self.api == "chat":
            if request.messages is None:
                raise ValueError("this teacher uses the chat API: the request needs messages")
            kwargs["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        else:
            if request.prompt is None:
                raise ValueError(
                    "this teacher uses the completions API: the request needs a prompt"
                )
            kwargs["prompt"] = request.prompt
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        return kwargs

    async def _attempt(self, kwargs: dict[str, Any], failed_on: list[str]) -> OpenAICompletion:
        """One HTTP request on the best endpoint (a retry avoids the one that just failed),
        waiting up to ``timeout_s`` while every endpoint is out of rotation or at its cap."""
        try:
            lease = await self.pool.acquire(
                failed_on[-1] if failed_on else None, max_wait_s=self.config.timeout_s
            )
        except NoEndpointAvailable as exc:
            raise _NoEndpoint(str(exc)) from None
        self.requests_sent += 1
        epoch = self.limiter.epoch
        outcome: Outcome = "cancelled"
        started = time.perf_counter()
        latency = 0.0
        try:
            if self.api == "chat":
                response: Any = await lease.client.chat.completions.create(
                    model=self.model, **kwargs
                )
            else:
                response = await lease.client.completions.create(model=self.model, **kwargs)
            latency = time.perf_counter() - started
            completion = self._parse(response, latency)
            outcome = "ok"
            self.limiter.on_success(latency)
            return completion
        except (openai.OpenAIError, _Malformed) as exc:
            outcome = _outcome(exc)
            if isinstance(exc, openai.APIStatusError) and exc.status_code == 429:
                self.limiter.on_overload(epoch)
            failed_on.append(lease.url)
            exc._teacher_url = lease.url  # type: ignore[attr-defined]  # for messages
            raise
        except ValueError as exc:  # e.g. json.JSONDecodeError: the body is not valid JSON
            outcome = "alive"
            failed_on.append(lease.url)
            malformed = _Malformed(f"unparseable body ({exc})")
            malformed._teacher_url = lease.url  # type: ignore[attr-defined]
            raise malformed from exc
        finally:
            self.pool.release(lease, outcome, latency)

    def _parse(self, response: Any, latency_s: float) -> OpenAICompletion:
        if isinstance(response, str):  # the SDK hands back raw text when the body is not JSON
            raise _Malformed(f"not JSON: {response[:80]!r}")
        choices = getattr(response, "choices", None)
        if not choices:
            raise _Malformed("no choices")
        if len(choices) > 1:
            log.debug("server returned %d choices for one request; using the first", len(choices))
        first = choices[0]
        if self.api == "chat":
            message = getattr(first, "message", None)
            if message is None:
                raise _Malformed("choice has no message")
            text = getattr(message, "content", None)
        else:
            text = getattr(first, "text", None)
        usage = getattr(response, "usage", None)
        return OpenAICompletion(
            text=text if isinstance(text, str) else "",
            finish_reason=getattr(first, "finish_reason", None),
            usage=Usage(
                prompt_tokens=getattr(usage, "prompt_tokens", None) or 0,
                completion_tokens=getattr(usage, "completion_tokens", None) or 0,
            ),
            model=getattr(response, "model", None) or self.model,
            latency_s=latency_s,
            choices=len(choices),
        )

    # -- retry policy ----------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = _retry_after(exc)
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.max_retry_after_s)
        exponent = min(state.attempt_number - 1, 60)
        backoff = self.backoff_base_s * 2**exponent + random.uniform(0, self.backoff_base_s)
        return min(backoff, self.backoff_max_s)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        sleep = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None:
            url = getattr(exc, "_teacher_url", "")
            log.info(
                "retry %d in %.2fs: %s", state.attempt_number, sleep,
                self._scrub(self._describe(exc, url)),
            )  # fmt: skip

    # -- messages --------------------------------------------------------------------------

    def _describe(self, exc: BaseException, url: str) -> str:
        """One line naming the endpoint and what went wrong (status and server's message)."""
        if isinstance(exc, openai.APIStatusError):
            return f"HTTP {exc.status_code} from {url}: {_server_message(exc)}"
        if isinstance(exc, openai.APITimeoutError):
            return f"timed out after {self.config.timeout_s:g}s waiting for {url}"
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot reach {url}: {_connection_reason(exc)}"
        if isinstance(exc, (_Malformed, openai.APIResponseValidationError)):
            return f"malformed response from {url}: {exc}"
        if isinstance(exc, _NoEndpoint):
            return str(exc)
        return f"{type(exc).__name__} from {url}: {exc}"

    def _scrub(self, message: str) -> str:
        """One line, at most 500 characters, with the API key (if any) masked."""
        if self._key:
            message = message.replace(self._key, "***")
        message = " ".join(message.split())
        return message if len(message) <= 500 else message[:497] + "..."


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 429) or exc.status_code >= 500
    return isinstance(
        exc,
        (openai.APIConnectionError, openai.APIResponseValidationError, _Malformed, _NoEndpoint),
    )


def _outcome(exc: BaseException) -> Outcome:
    """What a failed attempt says about its endpoint: ``down`` (connection error, timeout,
    408 or 5xx: count towards taking it out) or ``alive`` (it answered: 429, other 4xx, a
    malformed body)."""
    if isinstance(exc, openai.APIStatusError):
        return "down" if exc.status_code == 408 or exc.status_code >= 500 else "alive"
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return "down"
    return "alive"


def _retry_after(exc: BaseException | None) -> float | None:
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


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if message:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return exc.message


def _connection_reason(exc: BaseException) -> str:
    """The root cause of a connection error in a few words, e.g. ``connection refused``."""
    seen: set[int] = set()
    reason = ""
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror) and cause.strerror:
            return cause.strerror.lower()
        if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
            return os.strerror(cause.errno).lower()
        if str(cause) and str(cause) != "Connection error.":
            reason = str(cause)
        cause = cause.__cause__ or cause.__context__
    return reason or "connection error"
