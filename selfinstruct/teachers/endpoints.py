"""Endpoint bookkeeping for a teacher with several base URLs: routing, caps and health.

An :class:`EndpointPool` holds one :class:`Endpoint` per base URL (each with one or more
clients, i.e. connection pools) and hands out :class:`Lease`\\ s:

* **routing**: each request goes to the endpoint with the fewest requests in flight (then the
  fewest sent), so a faster endpoint, which finishes sooner, gets proportionally more; a retry
  avoids the endpoint its previous attempt failed on when another one is available;
* **per-endpoint cap**: with ``max_in_flight_per_endpoint`` an endpoint at its cap is skipped;
* **health** (only with more than one endpoint, where there is somewhere else to go):
  ``failure_threshold`` consecutive *down* outcomes (connection errors, timeouts, 5xx) take an
  endpoint out of rotation for a cool-down (``cooldown_base_s``, doubling on each failed probe up
  to ``cooldown_max_s``). When it ends the endpoint is *half-open*: exactly one probe request
  goes there; success (or any answer that shows the server is up, e.g. a 429) puts it back,
  a failure sends it out again for twice as long;
* **waiting**: when no endpoint can take a request (all out, or all at their cap),
  :meth:`EndpointPool.acquire` waits for a slot or for the earliest cool-down to end, up to
  ``max_wait_s``, then raises :class:`NoEndpointAvailable` (the caller's retry budget decides
  whether to try again).

It never sees API keys; :meth:`EndpointPool.stats` is safe to show or store.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

C = TypeVar("C")

#: how a request ended, for health: ``ok`` (answered), ``down`` (unreachable, timed out or 5xx),
#: ``alive`` (answered with an error that shows the server is up: 429, 4xx, malformed body),
#: ``cancelled`` (the caller gave up: says nothing about the endpoint)
Outcome = Literal["ok", "down", "alive", "cancelled"]


class NoEndpointAvailable(Exception):
    """No endpoint could take a request within the wait allowed."""


@dataclass
class Endpoint(Generic[C]):
    """One base URL: its clients and counters."""

    url: str
    clients: list[C]
    client_in_flight: list[int] = field(default_factory=list)
    in_flight: int = 0
    sent: int = 0
    ok: int = 0
    failed: int = 0
    consecutive_failures: int = 0
    ejections: int = 0
    #: when the cool-down ends (monotonic clock); None while the endpoint is in rotation
    down_until: float | None = None
    cooldown_s: float = 0.0
    probing: bool = False
    latency_total_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.clients:
            raise ValueError(f"endpoint {self.url} needs at least one client")
        self.client_in_flight = [0] * len(self.clients)

    @property
    def healthy(self) -> bool:
        return self.down_until is None


@dataclass
class Lease(Generic[C]):
    """One request's hold on an endpoint; give it back with :meth:`EndpointPool.release`."""

    endpoint: Endpoint[C]
    index: int
    probe: bool
    released: bool = False

    @property
    def client(self) -> C:
        return self.endpoint.clients[self.index]

    @property
    def url(self) -> str:
        return self.endpoint.url


class EndpointPool(Generic[C]):
    """Routes requests over endpoints; see the module docstring. One event loop only."""

    def __init__(
        self,
        endpoints: list[tuple[str, list[C]]],
        *,
        max_in_flight_per_endpoint: int | None = None,
        failure_threshold: int = 3,
        cooldown_base_s: float = 2.0,
        cooldown_max_s: float = 60.0,
        eject: bool | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("an endpoint pool needs at least one endpoint")
        if max_in_flight_per_endpoint is not None and max_in_flight_per_endpoint < 1:
            raise ValueError("max_in_flight_per_endpoint must be at least 1")
        self.endpoints: list[Endpoint[C]] = [Endpoint(url, list(cs)) for url, cs in endpoints]
        self.max_in_flight_per_endpoint = max_in_flight_per_endpoint
        self.failure_threshold = max(1, failure_threshold)
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_max_s = max(cooldown_max_s, cooldown_base_s)
        self.eject = len(self.endpoints) > 1 if eject is None else eject
        self._waiters: list[asyncio.Future[None]] = []

    # -- leasing ---------------------------------------------------------------------------

    def try_acquire(self, avoid: str | None = None) -> Lease[C] | None:
        """A lease on the best endpoint that can take a request now, or None."""
        now = time.monotonic()
        best: Endpoint[C] | None = None
        best_key: tuple[bool, int, int] | None = None
        for endpoint in self.endpoints:
            if endpoint.down_until is None:
                cap = self.max_in_flight_per_endpoint
                if cap is not None and endpoint.in_flight >= cap:
                    continue
            elif endpoint.probing or now < endpoint.down_until:
                continue
            key = (endpoint.url == avoid, endpoint.in_flight, endpoint.sent)
            if best_key is None or key < best_key:
                best, best_key = endpoint, key
        if best is None:
            return None
        probe = best.down_until is not None
        if probe:
            best.probing = True
        index = min(range(len(best.clients)), key=best.client_in_flight.__getitem__)
        best.client_in_flight[index] += 1
        best.in_flight += 1
        best.sent += 1
        return Lease(best, index, probe)

    async def acquire(self, avoid: str | None = None, max_wait_s: float = 60.0) -> Lease[C]:
        """A lease, waiting (at most ``max_wait_s``) while no endpoint can take a request."""
        deadline = time.monotonic() + max_wait_s
        loop = asyncio.get_running_loop()
        while True:
            lease = self.try_acquire(avoid)
            if lease is not None:
                return lease
            now = time.monotonic()
            if now >= deadline:
                raise NoEndpointAvailable(self.why_unavailable())
            wait = deadline - now
            ready = [
                e.down_until for e in self.endpoints if e.down_until is not None and not e.probing
            ]
            if ready:
                wait = min(wait, max(0.0, min(ready) - now) + 0.001)
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait((waiter,), timeout=wait)
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, lease: Lease[C], outcome: Outcome, latency_s: float = 0.0) -> None:
        """Give a lease back, saying how the request ended (updates health and counters)."""
        if lease.released:
            return
        lease.released = True
        endpoint = lease.endpoint
        endpoint.in_flight -= 1
        endpoint.client_in_flight[lease.index] -= 1
        if lease.probe:
            endpoint.probing = False
        if outcome == "cancelled":
            pass
        elif outcome == "down":
            endpoint.failed += 1
            endpoint.consecutive_failures += 1
            if self.eject and (
                lease.probe
                or (
                    endpoint.down_until is None
                    and endpoint.consecutive_failures >= self.failure_threshold
                )
            ):
                self._take_out(endpoint)
        else:
            if outcome == "ok":
                endpoint.ok += 1
                endpoint.latency_total_s += latency_s
            else:
                endpoint.failed += 1
            endpoint.consecutive_failures = 0
            endpoint.down_until = None
            endpoint.cooldown_s = 0.0
        self._wake()

    def _take_out(self, endpoint: Endpoint[C]) -> None:
        if endpoint.cooldown_s <= 0:
            endpoint.cooldown_s = self.cooldown_base_s
        else:
            endpoint.cooldown_s = min(endpoint.cooldown_s * 2, self.cooldown_max_s)
        endpoint.down_until = time.monotonic() + endpoint.cooldown_s
        endpoint.ejections += 1

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- reporting -------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.endpoints)

    def why_unavailable(self) -> str:
        now = time.monotonic()
        parts = []
        for e in self.endpoints:
            if e.down_until is not None:
                state = "probing" if e.probing else f"back in {max(0.0, e.down_until - now):.1f}s"
                parts.append(
                    f"{e.url} out of rotation after {e.consecutive_failures} failures ({state})"
                )
            else:
                parts.append(f"{e.url} at its cap of {self.max_in_flight_per_endpoint} in flight")
        return "no endpoint available: " + "; ".join(parts)

    def stats(self) -> dict[str, dict[str, int | bool | float]]:
        """Per base URL: sent, ok, failed, in_flight, healthy, ejections, cooldown_left_s,
        mean_latency_s. No keys, no clients."""
        now = time.monotonic()
        return {
            e.url: {
                "sent": e.sent,
                "ok": e.ok,
                "failed": e.failed,
                "in_flight": e.in_flight,
                "healthy": e.healthy,
                "ejections": e.ejections,
                "cooldown_left_s": round(max(0.0, (e.down_until or now) - now), 3),
                "mean_latency_s": round(e.latency_total_s / e.ok, 4) if e.ok else 0.0,
            }
            for e in self.endpoints
        }
