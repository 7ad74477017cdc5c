"""The teachers of a run: one per stage, shared by stages whose settings are equal.

Every call goes through :meth:`TeacherPool.call`, whatever the backend: the response cache
first (:mod:`~selfinstruct.teachers.cache`: a hit is answered without a request), then the
rate limits (:mod:`~selfinstruct.teachers.ratelimit`; a teacher that paces its own attempts,
like the OpenAI one, keeps its own limiter), then the teacher; a new reply is stored.

A call cancelled while its request is on the wire (the run reached its target, or stops) lets
that request finish in the background and stores its reply, so a resume or a re-run does not
pay for it again; :meth:`TeacherPool.aclose` waits up to ``drain_s`` for those. A call
cancelled while its request still waits in the teacher's queue is never sent. (Only for
teachers with a ``before_send`` hook, which says when a request leaves their queue: the OpenAI
one; other teachers' calls are cancelled as they are.)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from selfinstruct.errors import CircuitOpen, TeacherError
from selfinstruct.records import TeacherCall, Usage
from selfinstruct.teachers import make_teacher
from selfinstruct.teachers.base import Completion, Request, Teacher, TeacherSettings
from selfinstruct.teachers.cache import CacheConfig, ResponseCache, open_cache, request_key
from selfinstruct.teachers.openai_batch import OpenAIBatchConfig
from selfinstruct.teachers.ratelimit import RateLimiter, estimate_tokens

log = logging.getLogger(__name__)


@dataclass
class _Call:
    """One call in flight: whether its caller was cancelled."""

    cancelled: bool = False


#: the call a teacher's request belongs to, for :meth:`TeacherPool._before_send`
_CALL: ContextVar[_Call | None] = ContextVar("selfinstruct_teacher_call", default=None)


class TeacherPool:
    """Builds, starts and closes the teacher of every stage; ``pool[stage]`` is its teacher.

    ``max_failures`` requests failing in a row (retries exhausted) open the circuit: the next
    failure raises :class:`CircuitOpen` and the run stops, resumable. With a ``cache``, replies
    are looked up and stored there (:attr:`cache_hits`, :attr:`cache_misses` this session).
    """

    def __init__(
        self,
        configs: Mapping[str, TeacherSettings],
        run_dir: Path,
        max_failures: int = 20,
        cache: ResponseCache | CacheConfig | None = None,
        drain_s: float = 5.0,
    ) -> None:
        self.max_failures = max_failures
        self.failures_in_a_row = 0
        # a CacheConfig is opened here (InputError when the file is unusable; None when off)
        self.cache = open_cache(cache) if isinstance(cache, CacheConfig) else cache
        self.cache_hits = 0
        self.cache_misses = 0
        self._cache_broken = False
        #: per (backend, model): whether the cache held a reply for it when first asked; one
        #: that held none (a cold run) is not looked up again in this session, only stored to
        self._cache_warm: dict[tuple[str, str], bool] = {}
        self._kinds: dict[str, str] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self.drain_s = drain_s
        self._send_check: Callable[[], None] | None = None
        self._draining: set[asyncio.Task[None]] = set()
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
            self._kinds[stage] = config.kind
        for config, teacher in built:
            # a teacher that paces its own attempts (OpenAI) has its own limiter
            if getattr(teacher, "rate_limiter", None) is None:
                limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
                if limiter.limited:
                    for stage, one in self._by_stage.items():
                        if one is teacher:
                            self._limiters[stage] = limiter
        self.teachers = [teacher for _, teacher in built]
        for teacher in self.teachers:
            if hasattr(teacher, "before_send"):
                teacher.before_send = self._before_send  # type: ignore[attr-defined]

    def __getitem__(self, stage: str) -> Teacher:
        return self._by_stage[stage]

    async def call(
        self,
        stage: str,
        request: Request,
        call_id: str,
        serves: Sequence[str],
        record: Callable[[TeacherCall], None],
        before_miss: Callable[[], Awaitable[None]] | None = None,
    ) -> Completion:
        """Send ``request`` to the stage's teacher and ``record`` its :class:`TeacherCall` row
        (usage, latency, raw reply; or the error, before re-raising it). A reply found in the
        cache is recorded with ``cached=True``, zero usage and the tokens it ``saved``. Once
        this run has had a hit (it is re-running cached work), a miss first awaits
        ``before_miss``, which may hold it back until its work is known to be needed."""
        teacher = self[stage]
        key = None
        if self.cache is not None and not self._cache_broken:
            key = request_key(self._kinds[stage], teacher.model, teacher.api, request)
            hit = await self._lookup(key) if self._warm(stage, teacher.model) else None
            if hit is not None:
                self.cache_hits += 1
                record(self._row(call_id, stage, teacher.model, hit, serves, cached=True))
                return hit
            if before_miss is not None and self.cache_hits:
                await before_miss()
            self.cache_misses += 1
        started = time.monotonic()
        try:
            limiter = self._limiters.get(stage)
            if limiter is not None:
                tokens = estimate_tokens(request)
                await limiter.acquire(tokens)
            completion = await self._send(key, stage, teacher, request)
            if limiter is not None:
                limiter.settle(tokens, completion.usage.total_tokens)
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
        if key is not None:  # stored before the run's row: a kill between them costs nothing
            await self._store(key, stage, teacher, request, completion)
        latency = completion.latency_s or time.monotonic() - started
        record(self._row(call_id, stage, teacher.model, completion, serves, latency_s=latency))
        return completion

    @staticmethod
    def _row(
        call_id: str,
        stage: str,
        model: str,
        completion: Completion,
        serves: Sequence[str],
        *,
        cached: bool = False,
        latency_s: float = 0.0,
    ) -> TeacherCall:
        return TeacherCall(
            id=call_id,
            stage=stage,
            model=completion.model or model,
            usage=Usage() if cached else completion.usage,
            finish_reason=completion.finish_reason,
            latency_s=latency_s,
            serves=list(serves),
            text=completion.text,
            choices=1 + len(completion.more),
            more=[text for text, _ in completion.more],
            cached=cached,
            saved=completion.usage if cached else None,
        )

    async def _send(
        self, key: str | None, stage: str, teacher: Teacher, request: Request
    ) -> Completion:
        """``teacher.complete(request)``; with a cache and a teacher that says when it sends,
        a cancelled call leaves the request running and stores its reply when it comes."""
        if key is None or not hasattr(teacher, "before_send"):
            return await teacher.complete(request)
        call = _Call()
        token = _CALL.set(call)  # the task below runs in a copy of this context: it sees call
        try:
            sending = asyncio.ensure_future(teacher.complete(request))
        finally:
            _CALL.reset(token)
        try:
            return await asyncio.shield(sending)
        except asyncio.CancelledError:
            call.cancelled = True  # not sent yet: it never will be (see _before_send)
            keep = asyncio.ensure_future(self._store_later(sending, key, stage, teacher, request))
            self._draining.add(keep)
            keep.add_done_callback(self._draining.discard)
            raise

    async def _store_later(
        self,
        sending: asyncio.Future[Completion],
        key: str,
        stage: str,
        teacher: Teacher,
        request: Request,
    ) -> None:
        try:
            reply = await sending
        except Exception:  # it failed, or was never sent: nothing to keep
            return
        await self._store(key, stage, teacher, request, reply)

    def _before_send(self) -> None:
        """Called by a teacher right before it sends a request, in the request's context."""
        call = _CALL.get()
        if call is not None and call.cancelled:
            raise TeacherError("its caller was cancelled before it was sent")
        if self._send_check is not None:
            self._send_check()

    def _warm(self, stage: str, model: str) -> bool:
        """Whether the cache held any reply of this backend and model when this session first
        asked; replies stored later by another process are then not seen (the cost of not
        looking up every request of a cold run)."""
        pair = (self._kinds[stage], model)
        warm = self._cache_warm.get(pair)
        if warm is None:
            assert self.cache is not None
            try:
                warm = self._cache_warm[pair] = self.cache.holds(*pair)
            except sqlite3.Error as exc:
                self._cache_failed("read", exc)
                return False
        return warm

    async def _lookup(self, key: str) -> Completion | None:
        assert self.cache is not None
        try:
            return await self.cache.get(key)
        except (sqlite3.Error, ValueError, KeyError) as exc:
            self._cache_failed("read", exc)
            return None

    async def _store(
        self, key: str, stage: str, teacher: Teacher, request: Request, reply: Completion
    ) -> None:
        assert self.cache is not None
        try:
            kind = self._kinds[stage]
            await self.cache.put(key, kind, teacher.model, teacher.api, request, reply)
        except sqlite3.Error as exc:
            self._cache_failed("write", exc)

    def _cache_failed(self, what: str, exc: Exception) -> None:
        """A cache that fails (disk full, locked for longer than the busy timeout, a damaged
        row) is left alone for the rest of the session; the run goes on without it."""
        self._cache_broken = True
        log.warning("response cache %s failed (%s); going on without it", what, exc)

    async def start(self) -> None:
        """Start every teacher, then let those that can probe what their servers honour."""
        for teacher in self.teachers:
            await teacher.start()
            probe = getattr(teacher, "probe", None)
            if callable(probe):
                cache = self.cache if not self._cache_broken else None
                known = "known" in inspect.signature(probe).parameters  # it can re-use findings
                await (probe(known=cache) if known else probe())

    async def aclose(self) -> None:
        """Wait up to ``drain_s`` for requests whose callers were cancelled (their replies go
        to the cache), then close every teacher (one failing to close does not keep the others
        open) and the cache."""
        if self._draining:
            _, late = await asyncio.wait(set(self._draining), timeout=self.drain_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for teacher in self.teachers:
            with contextlib.suppress(Exception):
                await teacher.aclose()
        if self.cache is not None:
            with contextlib.suppress(sqlite3.Error):
                self.cache.close()

    def before_send(self, check: Callable[[], None]) -> None:
        """Have every teacher that queues requests behind a limit call ``check`` right before
        it sends one (a cap reached while a request waited stops it there)."""
        self._send_check = check

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
