"""An async concurrency limiter whose limit can change at runtime, with AIMD adaptation.

:class:`AdaptiveLimiter` is a semaphore with a mutable capacity: :meth:`~AdaptiveLimiter.slot`
holds one of ``limit`` slots; lowering the limit never revokes a held slot, it only stops new
ones being granted until enough are released. With ``adaptive=True`` the limit follows the
server, TCP-style, within ``[minimum, maximum]``:

* it starts at ``initial`` (``maximum`` by default: the ceiling the user set, so no round trip
  is spent ramping up) in *slow start*: +1 per success (so it doubles per round trip) until the
  first overload or until latency rises;
* an overload (HTTP 429) halves it (not below ``minimum``) and ends slow start; overloads
  from requests that began before the last cut do not cut again (one cut per window);
* afterwards it grows additively: +1 after ``limit`` successes, i.e. about one per round trip;
* it grows only while the limit is in use (no point raising an idle limit) and while latency
  is not rising: a fast moving average of latency must stay within ``latency_tolerance`` of a
  slow one (the baseline), plus ``latency_slack_s`` to ignore loopback jitter.

With ``adaptive=False`` the limit is fixed at ``maximum`` (a plain semaphore).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class AdaptiveLimiter:
    """At most :attr:`limit` holders at once; the limit moves with :meth:`on_success` and
    :meth:`on_overload` when ``adaptive``. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        maximum: int,
        *,
        adaptive: bool = True,
        initial: int | None = None,
        minimum: int = 1,
        latency_tolerance: float = 1.5,
        latency_slack_s: float = 0.005,
    ) -> None:
        if maximum < 1 or minimum < 1 or minimum > maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum} and {maximum}")
        self.maximum = maximum
        self.minimum = minimum
        self.adaptive = adaptive
        start = maximum if initial is None else initial
        self._limit = max(minimum, min(maximum, start)) if adaptive else maximum
        self.latency_tolerance = latency_tolerance
        self.latency_slack_s = latency_slack_s
        #: bumped at every cut; an overload from a request that started in an older epoch
        #: does not cut again
        self.epoch = 0
        self.slow_start = adaptive
        self.in_use = 0
        self.cuts = 0
        self.peak_limit = self._limit
        self.lowest_limit = self._limit
        self._credit = 0  # successes towards the next additive step
        self._fast: float | None = None  # latency EWMA, alpha 0.3
        self._slow: float | None = None  # latency EWMA, alpha 0.05 (the baseline)
        self._waiters: deque[asyncio.Future[None]] = deque()

    # -- the semaphore ---------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def set_limit(self, limit: int) -> None:
        """Set the limit (clamped to ``[minimum, maximum]``); raising it wakes waiters."""
        self._limit = max(self.minimum, min(self.maximum, limit))
        self.peak_limit = max(self.peak_limit, self._limit)
        self.lowest_limit = min(self.lowest_limit, self._limit)
        self._wake()

    async def acquire(self) -> None:
        if self.in_use < self._limit and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release() counted us in before waking us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted and cancelled in the same tick: hand the slot on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    # -- adaptation ------------------------------------------------------------------------

    def on_overload(self, epoch: int | None = None) -> None:
        """A request was rate limited (HTTP 429): halve the limit, once per window.

        ``epoch`` is :attr:`epoch` read when that request was sent; ``None`` always cuts.
        """
        if not self.adaptive or (epoch is not None and epoch != self.epoch):
            return
        self.epoch += 1
        self.cuts += 1
        self.slow_start = False
        self._credit = 0
        self.set_limit(self._limit // 2)

    def on_success(self, latency_s: float) -> None:
        """A request succeeded after ``latency_s`` seconds: maybe grow the limit."""
        if not self.adaptive:
            return
        rising = self._observe(latency_s)
        if rising:
            self.slow_start = False
            self._credit = 0
            return
        if self._limit >= self.maximum or self.in_use + self.waiting < self._limit:
            return  # at the cap, or the limit is not what holds requests back
        if self.slow_start:
            self.set_limit(self._limit + 1)
            return
        self._credit += 1
        if self._credit >= self._limit:
            self._credit = 0
            self.set_limit(self._limit + 1)

    def _observe(self, latency_s: float) -> bool:
        """Fold one latency into the averages; True when latency is rising over the baseline."""
        if self._fast is None or self._slow is None:
            self._fast = self._slow = latency_s
            return False
        self._fast += 0.3 * (latency_s - self._fast)
        self._slow += 0.05 * (latency_s - self._slow)
        return self._fast > self._slow * self.latency_tolerance + self.latency_slack_s

    def stats(self) -> dict[str, int | bool]:
        return {
            "limit": self._limit,
            "maximum": self.maximum,
            "in_use": self.in_use,
            "waiting": self.waiting,
            "cuts": self.cuts,
            "adaptive": self.adaptive,
        }
