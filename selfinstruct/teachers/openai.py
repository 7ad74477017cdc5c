"""The OpenAI-compatible teacher: OpenAI itself, vLLM's or llama.cpp's server, any ``/v1`` API.

Transport only, with the official ``openai`` SDK (``AsyncOpenAI``; its lower-level
``client.post`` path: the body is built here as plain JSON and the reply read raw, bytes and
headers, which skips the SDK's per-call typed transforms and response models; each request of
a shape sent before reuses the SDK's own build of it,
:class:`~selfinstruct.teachers.lean_client.LeanAsyncOpenAI`) and the wire format of
:mod:`~selfinstruct.teachers.openai_wire` (body, ``X-Selfinstruct-Stage`` header, parsing,
error classification, :class:`~selfinstruct.teachers.openai_wire.RetryPolicy`). The SDK's own
retries are off; this module retries what the wire module calls retryable (429,
408, 5xx, timeouts, connection errors, malformed answers) and fails other 4xx at once.

Requests are bounded by an :class:`~selfinstruct.teachers.adaptive.AdaptiveLimiter` (a
request keeps its slot while it backs off, so a rate-limited server sees less load, not more):
with ``adaptive_concurrency`` its limit moves AIMD-style within ``[1, max_concurrency]``
(halved on a 429, grown while latency holds), else it is fixed at ``max_concurrency``. They are
spread over the configured base URLs by an :class:`~selfinstruct.teachers.endpoints.EndpointPool`
(fewest in flight first, an optional per-endpoint cap, and endpoints that keep failing taken out
of rotation for a cool-down; see :meth:`OpenAITeacher.endpoint_stats`), and paced by a
:class:`~selfinstruct.teachers.ratelimit.RateLimiter` (``requests_per_minute``,
``tokens_per_minute``, the servers' ``x-ratelimit-*`` and ``retry-after`` headers). No error
message ever holds the API key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import openai
from openai import RequestOptions
from pydantic import Field

from selfinstruct.errors import TeacherError
from selfinstruct.teachers import json_codec
from selfinstruct.teachers import openai_wire as wire
from selfinstruct.teachers.adaptive import AdaptiveLimiter
from selfinstruct.teachers.base import Api, Completion, Request
from selfinstruct.teachers.capabilities import CapabilityMemory, probe_server, schema_style
from selfinstruct.teachers.endpoints import EndpointPool, NoEndpointAvailable, Outcome
from selfinstruct.teachers.lean_client import LeanAsyncOpenAI
from selfinstruct.teachers.openai_wire import DEFAULT_BASE_URL, PLACEHOLDER_API_KEY
from selfinstruct.teachers.ratelimit import RateLimiter, estimate_tokens

__all__ = [
    "DEFAULT_BASE_URL", "PLACEHOLDER_API_KEY", "REQUESTS_PER_CLIENT",
    "OpenAICompletion", "OpenAIConfig", "OpenAITeacher",
]  # fmt: skip

log = logging.getLogger(__name__)

#: concurrent requests per SDK client: httpx's connection pool costs O(connections) CPU per
#: request, so high concurrency is spread over several clients (shards) per base URL
REQUESTS_PER_CLIENT = 32


class OpenAIConfig(wire.OpenAIClientSettings):
    """The online OpenAI-compatible teacher: OpenAI itself, vLLM's or llama.cpp's server."""

    kind: Literal["openai"] = Field(
        default="openai", description="An OpenAI-compatible HTTP API, one request at a time."
    )
    max_concurrency_per_endpoint: int | None = Field(
        default=None, ge=1, le=4096,
        description="Cap on requests in flight per base URL (unset: only max_concurrency).",
    )  # fmt: skip
    adaptive_concurrency: bool = Field(
        default=True,
        description="Halve concurrency on HTTP 429, grow it while latency holds (AIMD).",
    )
    initial_concurrency: int | None = Field(
        default=None, ge=1, le=4096,
        description="Where the adaptive limit starts (unset: max_concurrency); lower, it grows "
        "by one a success (doubling each round trip) up to max_concurrency.",
    )  # fmt: skip
    probe_capabilities: bool = Field(
        default=True,
        description="At start, find out with a few tiny requests whether each server honours "
        "n, list prompts, seed and JSON schemas (recorded in the manifest).",
    )


@dataclass(frozen=True)
class OpenAICompletion(Completion):
    """A :class:`Completion` that also says how many choices the server returned (more than
    ``n`` asked for means the server does not follow ``n``)."""

    choices: int = 1


class _NoEndpoint(Exception):
    """Every endpoint was out of rotation (or at its cap) for as long as an attempt may wait."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, _NoEndpoint) or wire.is_retryable(exc)


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
        config: OpenAIConfig,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        failure_threshold: int = 3,
        cooldown_base_s: float = 2.0,
        cooldown_max_s: float = 60.0,
    ) -> None:
        self.config = config
        self.api: Api = config.api
        self._path = wire.API_PATHS[self.api].removeprefix("/v1")  # relative to the base URL
        #: base URL -> the absolute URL a request posts to: the join the SDK would make for
        #: every request, made once (it parses URLs twice a request for a relative path)
        self._targets: dict[str, str] = {}
        self.model: str = config.model or ""
        self.max_concurrency: int = config.max_concurrency
        self.retry = wire.RetryPolicy(
            max_retries=config.max_retries,
            base_s=backoff_base_s,
            max_s=backoff_max_s,
            max_retry_after_s=max_retry_after_s,
        )
        self.requests_sent = 0
        self._requests_made = 0  # complete() calls: numbers each request's idempotency key
        self._tag = f"{os.getpid()}-{id(self):x}"
        self.retries = 0
        self.failures = 0
        self._key = config.key()
        #: called right before a request leaves the queue; may raise to stop it
        self.before_send: Callable[[], None] | None = None
        #: per base URL, what :meth:`probe` found the server honours
        self.capabilities: dict[str, dict[str, bool | None]] = {}
        #: the ``response_format`` form every endpoint honours for a JSON schema (None: none
        #: found, or not probed); structured stages in ``auto`` mode use it when set
        self.schema_style: wire.SchemaStyle | None = None
        self.limiter = AdaptiveLimiter(
            config.max_concurrency,
            adaptive=config.adaptive_concurrency,
            initial=config.initial_concurrency,
        )
        #: requests/tokens per minute, and the servers' x-ratelimit-* and retry-after headers
        self.rate_limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self._urls = list(dict.fromkeys(u.rstrip("/") for u in config.base_url)) or [
            DEFAULT_BASE_URL
        ]
        per_url = min(config.max_concurrency, config.max_concurrency_per_endpoint or 1 << 30)
        shards = math.ceil(per_url / REQUESTS_PER_CLIENT)
        self.pool: EndpointPool[LeanAsyncOpenAI] = EndpointPool(
            [(url, [self._client(url) for _ in range(shards)]) for url in self._urls],
            max_in_flight_per_endpoint=config.max_concurrency_per_endpoint,
            failure_threshold=failure_threshold,
            cooldown_base_s=cooldown_base_s,
            cooldown_max_s=cooldown_max_s,
        )

    def _client(self, url: str) -> LeanAsyncOpenAI:
        client = wire.make_client(url, self._key, self.config.timeout_s, self.config.http_client)
        base = client.base_url
        path = base.raw_path + self._path.lstrip("/").encode()
        self._targets[url] = str(base.copy_with(raw_path=path))
        return client

    # -- counters --------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """HTTP requests on the wire right now, over all endpoints."""
        return self.pool.in_flight

    @property
    def concurrency_limit(self) -> int:
        """How many requests may run at once now (moves when adaptive; <= max_concurrency)."""
        return self.limiter.limit

    def endpoint_stats(self) -> dict[str, dict[str, Any]]:
        """Per base URL: sent, ok, failed, in_flight, healthy, ejections, cooldown_left_s,
        mean_latency_s (attempts, retries included), and the probed ``capabilities``. Never
        holds a key."""
        stats: dict[str, dict[str, Any]] = dict(self.pool.stats())
        for url, capabilities in self.capabilities.items():
            stats[url] = {**stats.get(url, {}), "capabilities": capabilities}
        return stats

    async def probe(self, known: CapabilityMemory | None = None) -> None:
        """What each endpoint honours (:mod:`~selfinstruct.teachers.capabilities`), unless
        ``probe_capabilities`` is off: found recently (``known``, e.g. the response cache) or
        probed now. Never fails: a probe that cannot run says None."""
        if not self.config.probe_capabilities:
            return
        for endpoint in self.pool.endpoints:
            found = known.capabilities(endpoint.url, self.model, self.api) if known else None
            if found is None:
                found = await probe_server(endpoint.clients[0], self.model, self.api)
                if known is not None:
                    known.remember_capabilities(endpoint.url, self.model, self.api, found)
            self.capabilities[endpoint.url] = found
            log.info("%s honours: %s", endpoint.url, ", ".join(k for k, v in found.items() if v))
        self.schema_style = schema_style(self.capabilities.values())

    @property
    def base_urls(self) -> list[str]:
        return list(self._urls)

    # -- Teacher protocol ------------------------------------------------------------------

    async def start(self) -> None:
        """Discover the served model (``GET /models``) when the config names none."""
        if self.model:
            return
        clients = [(endpoint.url, endpoint.clients[0]) for endpoint in self.pool.endpoints]
        self.model, url = await wire.discover_model(clients, self.config.timeout_s, self._key)
        log.info("discovered model %s at %s", self.model, url)

    async def complete(self, request: Request) -> Completion:
        """One request, retried on transient failures; TeacherError when it fails for good."""
        style = self.schema_style or "json_schema"
        body = wire.request_body(self.api, self.model, request, style)  # ValueError: bad shape
        content = json_codec.dumps(body)  # once, whatever the retries
        self._requests_made += 1
        options: RequestOptions = {  # given, so the SDK copies no defaults for them
            "headers": wire.request_headers(request),
            "max_retries": 0,
            "timeout": self.config.timeout_s,
            # unique a request (the SDK would draw a uuid4); sent only by SDKs that send one
            "idempotency_key": f"selfinstruct-{self._tag}-{self._requests_made}",
        }
        tokens = estimate_tokens(request)
        failed_on: list[str] = []
        attempt = 1
        await self.limiter.acquire()  # held while backing off: a struggling server sees less
        try:
            if self.before_send is not None:
                self.before_send()  # e.g. a budget reached while this request waited
            while True:
                try:
                    return await self._attempt(content, options, failed_on, tokens)
                except (openai.OpenAIError, wire.MalformedResponse, _NoEndpoint) as exc:
                    if attempt > self.config.max_retries or not _retryable(exc):
                        raise self._failed(request, exc, attempt) from None
                    await self._back_off(attempt, exc)
                    attempt += 1
        finally:
            self.limiter.release()

    def _failed(self, request: Request, exc: BaseException, attempts: int) -> TeacherError:
        self.failures += 1
        message = self._describe(exc, getattr(exc, "_teacher_url", self._urls[0]))
        if _retryable(exc):
            message = (
                f"{request.stage} request to {self.model or 'the teacher'} failed after "
                f"{attempts} attempt{'s' if attempts != 1 else ''}: {message}"
            )
        return TeacherError(self._scrub(message))

    async def aclose(self) -> None:
        for endpoint in self.pool.endpoints:
            for client in endpoint.clients:
                await client.close()

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(
        self, content: bytes, options: RequestOptions, failed_on: list[str], tokens: int
    ) -> OpenAICompletion:
        """One HTTP request on the best endpoint (a retry avoids the one that just failed),
        waiting up to ``timeout_s`` while every endpoint is out of rotation or at its cap, and
        first for the rate limits (``tokens``: the request's estimated size)."""
        await self.rate_limiter.acquire(tokens)
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
            # the SDK's lower-level path (post): the body is already JSON bytes (no per-call
            # typed transform of it) and the reply comes back as bytes (no response models)
            response = await lease.client.post_bytes(self._targets[lease.url], content, options)
            latency = time.perf_counter() - started
            self.rate_limiter.observe(response.headers)
            completion = self._parse(wire.loads(response.content), latency)
            self.rate_limiter.settle(tokens, completion.usage.total_tokens)
            outcome = "ok"
            self.limiter.on_success(latency)
            return completion
        except (openai.OpenAIError, wire.MalformedResponse) as exc:
            outcome = wire.endpoint_health(exc)
            if isinstance(exc, openai.APIStatusError):
                self.rate_limiter.observe(exc.response.headers)
                if exc.status_code == 429:
                    self.limiter.on_overload(epoch)
                    asked = min(wire.retry_after(exc) or 0.0, self.retry.max_retry_after_s)
                    self.rate_limiter.pause(asked)  # every request waits, not only this one
            failed_on.append(lease.url)
            exc._teacher_url = lease.url  # type: ignore[attr-defined]  # for messages
            raise
        except ValueError as exc:  # e.g. json.JSONDecodeError: the body is not valid JSON
            outcome = "alive"
            failed_on.append(lease.url)
            malformed = wire.MalformedResponse(f"unparseable body ({exc})")
            malformed._teacher_url = lease.url  # type: ignore[attr-defined]
            raise malformed from exc
        finally:
            self.pool.release(lease, outcome, latency)

    def _parse(self, response: Any, latency_s: float) -> OpenAICompletion:
        completion = wire.parse_response(self.api, response, self.model, latency_s)
        return OpenAICompletion(**vars(completion), choices=wire.choice_count(response))

    # -- retry policy ----------------------------------------------------------------------

    async def _back_off(self, attempt: int, exc: BaseException) -> None:
        """Wait before attempt ``attempt + 1`` (:class:`wire.RetryPolicy`; a plain loop rather
        than tenacity's per-call machinery, which cost ~0.05 ms a request)."""
        self.retries += 1
        sleep = self.retry.delay(attempt, exc)
        url = getattr(exc, "_teacher_url", "")
        log.info("retry %d in %.2fs: %s", attempt, sleep, self._scrub(self._describe(exc, url)))
        await asyncio.sleep(sleep)

    # -- messages --------------------------------------------------------------------------

    def _describe(self, exc: BaseException, url: str) -> str:
        """One line naming the endpoint and what went wrong (status and server's message)."""
        if isinstance(exc, _NoEndpoint):
            return str(exc)
        return wire.describe(exc, url, self.config.timeout_s)

    def _scrub(self, message: str) -> str:
        return wire.scrub(message, self._key)
