"""Requests and tokens per minute: a token bucket per teacher, and what servers say in headers.

``teacher.requests_per_minute`` / ``teacher.tokens_per_minute`` fill two buckets at that rate
(each holds at most ``burst_s`` seconds of it, and at least one request); a request takes one
request and its estimated tokens (:func:`estimate_tokens`: prompt characters / 4, plus
``max_tokens`` per choice asked for) before it is sent, and :meth:`RateLimiter.settle` trues the
token bucket up with the tokens the reply reports. Servers that send OpenAI's rate-limit
headers are followed whether or not limits are configured: ``x-ratelimit-remaining-requests``
/ ``-tokens`` at zero pause every request until ``x-ratelimit-reset-*`` has passed, a low
remaining count spaces requests out over the time to the reset, and a 429's ``retry-after``
pauses every request (not only the one that got it).

The clock and the sleep are injectable, so tests assert what the limiter decides without
waiting on a real clock.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from selfinstruct.teachers.base import Request

#: below this share of the limit (or, with no limit header, this many left) requests are spaced
LOW_SHARE = 0.1
LOW_COUNT = 10
#: characters per token in :func:`estimate_tokens`
CHARS_PER_TOKEN = 4

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def estimate_tokens(request: Request) -> int:
    """Tokens a request may use: its prompt (characters / 4) plus ``max_tokens`` per choice."""
    if request.messages is not None:
        chars = sum(len(m.content) + 4 for m in request.messages)
    else:
        chars = len(request.prompt or "")
    return chars // CHARS_PER_TOKEN + 1 + request.max_tokens * max(1, request.n)


def parse_duration(text: str | None) -> float | None:
    """Seconds in a reset header: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s`` or a plain number."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class _Bucket:
    per_s: float
    capacity: float
    level: float

    def refill(self, elapsed_s: float) -> None:
        self.level = min(self.capacity, self.level + elapsed_s * self.per_s)

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` (at most the capacity) is in the bucket."""
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.per_s


class RateLimiter:
    """One teacher's pace. ``acquire(tokens)`` before sending; ``observe(headers)`` after a
    reply; ``pause(seconds)`` on a 429; ``settle(estimated, used)`` once usage is known.

    Counters: :attr:`waits` (acquires that had to wait), :attr:`waited_s`, :attr:`pauses`
    (pauses asked for by headers or 429s) and :attr:`spaced` (replies that said the limit is
    nearly used up).
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        burst_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._requests = self._bucket(requests_per_minute, burst_s)
        self._tokens = self._bucket(tokens_per_minute, burst_s)
        self._checked = clock()
        self._paused_until = 0.0
        self._spacing_s = 0.0
        self._spacing_until = 0.0
        self._last_send = float("-inf")
        self._last_tokens = 0
        self._lock = asyncio.Lock()
        self.waits = 0
        self.waited_s = 0.0
        self.pauses = 0
        self.spaced = 0

    @staticmethod
    def _bucket(per_minute: float | None, burst_s: float) -> _Bucket | None:
        if per_minute is None:
            return None
        per_s = per_minute / 60.0
        capacity = max(1.0, per_s * burst_s)
        return _Bucket(per_s, capacity, capacity)

    @property
    def limited(self) -> bool:
        """Whether a configured limit applies (headers are followed either way)."""
        return self._requests is not None or self._tokens is not None

    def _refill(self, now: float) -> None:
        elapsed, self._checked = max(0.0, now - self._checked), now
        for bucket in (self._requests, self._tokens):
            if bucket is not None:
                bucket.refill(elapsed)

    def delay(self, tokens: int) -> float:
        """Seconds to wait before a request of ``tokens`` may go (0: now)."""
        now = self._clock()
        self._refill(now)
        wait = max(0.0, self._paused_until - now)
        if now < self._spacing_until:
            wait = max(wait, self._last_send + self._spacing_s - now)
        if self._requests is not None:
            wait = max(wait, self._requests.wait_for(1))
        if self._tokens is not None:
            wait = max(wait, self._tokens.wait_for(tokens))
        return wait

    async def acquire(self, tokens: int = 0) -> None:
        """Wait (first come, first served) until one request of ``tokens`` may be sent, then
        take it from the buckets."""
        async with self._lock:
            waited = False
            while (wait := self.delay(tokens)) > 0:
                waited = True
                self.waited_s += wait
                await self._sleep(wait)
            self.waits += waited
            if self._requests is not None:
                self._requests.level -= 1
            if self._tokens is not None:
                self._tokens.level -= min(tokens, self._tokens.capacity)
            self._last_send = self._clock()
            self._last_tokens = tokens

    def settle(self, estimated: int, used: int) -> None:
        """True the token bucket up: the reply used ``used`` tokens where ``estimated`` were
        taken (the bucket may go below zero: the next requests wait for it)."""
        if self._tokens is not None and used > 0:
            taken = min(estimated, self._tokens.capacity)
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + taken - used)

    def pause(self, seconds: float) -> None:
        """No request is sent for ``seconds`` from now (a 429's retry-after, a spent limit)."""
        if seconds > 0:
            self.pauses += 1
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow a reply's ``x-ratelimit-*`` headers (names as lower case or any case)."""
        lower = {name.lower(): value for name, value in headers.items()}
        for kind in ("requests", "tokens"):
            remaining = _int(lower.get(f"x-ratelimit-remaining-{kind}"))
            reset = parse_duration(lower.get(f"x-ratelimit-reset-{kind}"))
            if remaining is None or reset is None:
                continue
            limit = _int(lower.get(f"x-ratelimit-limit-{kind}"))
            if remaining <= 0 or (kind == "tokens" and remaining < self._last_tokens):
                self.pause(reset)  # spent, or too few tokens left for a request like the last
                continue
            if kind == "requests":
                low = remaining < (limit * LOW_SHARE if limit else LOW_COUNT)
                if low and reset > 0:
                    self.spaced += 1
                    now = self._clock()
                    self._spacing_s = reset / remaining
                    self._spacing_until = now + reset

    def stats(self) -> dict[str, float | int]:
        return {
            "waits": self.waits,
            "waited_s": round(self.waited_s, 3),
            "pauses": self.pauses,
            "spaced": self.spaced,
        }
