"""EndpointPool (routing, caps, health) and AdaptiveLimiter (AIMD), without HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from selfinstruct.teachers.adaptive import AdaptiveLimiter
from selfinstruct.teachers.endpoints import EndpointPool, NoEndpointAvailable


def pool(*urls: str, **kwargs: object) -> EndpointPool[str]:
    return EndpointPool([(u, [f"{u}#0"]) for u in urls], **kwargs)  # type: ignore[arg-type]


# -- AdaptiveLimiter -----------------------------------------------------------------------


def test_limiter_starts_at_eight_or_the_maximum() -> None:
    assert AdaptiveLimiter(64).limit == 64
    assert AdaptiveLimiter(64, initial=8).limit == 8
    assert AdaptiveLimiter(3).limit == 3
    assert AdaptiveLimiter(64, adaptive=False).limit == 64


def test_limiter_bounds_holders_and_a_lower_limit_revokes_nothing() -> None:
    async def main() -> None:
        limiter = AdaptiveLimiter(4, adaptive=False)
        active = 0
        peak = 0

        async def hold() -> None:
            nonlocal active, peak
            async with limiter.slot():
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.01)
                active -= 1

        await asyncio.gather(*(hold() for _ in range(20)))
        assert peak == 4 and limiter.in_use == 0

        for _ in range(4):
            await limiter.acquire()
        limiter.set_limit(2)
        assert limiter.in_use == 4  # held slots stay held
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        for _ in range(2):
            limiter.release()
        await asyncio.sleep(0)
        assert not waiter.done()  # 2 in use, limit 2
        limiter.release()
        await asyncio.sleep(0)
        assert waiter.done() and limiter.in_use == 2

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def main() -> None:
        limiter = AdaptiveLimiter(1, adaptive=False)
        await limiter.acquire()
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        limiter.release()
        await asyncio.gather(waiter, return_exceptions=True)
        assert limiter.in_use == 0
        await asyncio.wait_for(limiter.acquire(), 1)

    asyncio.run(main())


def saturate(limiter: AdaptiveLimiter) -> None:
    limiter.in_use = limiter.limit  # pretend every slot is busy (growth needs demand)


def test_overload_halves_once_per_window_then_grows_additively() -> None:
    limiter = AdaptiveLimiter(64, initial=32)
    epoch = limiter.epoch
    for _ in range(10):  # a storm of 429s from requests sent in the same window
        limiter.on_overload(epoch)
    assert limiter.limit == 16 and limiter.cuts == 1
    limiter.on_overload(limiter.epoch)
    assert limiter.limit == 8
    for _ in range(5):
        limiter.on_overload(limiter.epoch)
    assert limiter.limit == 1  # never below 1
    # additive increase: +1 per `limit` successes at a steady latency
    for _ in range(1 + 2 + 3 + 4):
        saturate(limiter)
        limiter.on_success(0.1)
    assert limiter.limit == 5


def test_slow_start_then_capped_at_maximum() -> None:
    limiter = AdaptiveLimiter(20, initial=8)
    for _ in range(50):
        saturate(limiter)
        limiter.on_success(0.1)
    assert limiter.limit == 20 and limiter.slow_start


def test_no_growth_when_idle_or_when_latency_rises() -> None:
    limiter = AdaptiveLimiter(64, initial=8)
    for _ in range(20):
        limiter.on_success(0.1)  # nothing in use: the limit is not the bottleneck
    assert limiter.limit == 8
    for _ in range(20):
        saturate(limiter)
        limiter.on_success(0.1)
    grown = limiter.limit
    for _ in range(30):
        saturate(limiter)
        limiter.on_success(1.0)  # latency rising: stop growing
    assert limiter.limit <= grown + 1 and not limiter.slow_start


def test_fixed_limiter_ignores_signals() -> None:
    limiter = AdaptiveLimiter(16, adaptive=False)
    limiter.on_overload()
    saturate(limiter)
    limiter.on_success(0.1)
    assert limiter.limit == 16


# -- EndpointPool --------------------------------------------------------------------------


def test_least_in_flight_routing_and_retry_avoidance() -> None:
    p = pool("a", "b")
    first, second = p.try_acquire(), p.try_acquire()
    assert first is not None and second is not None
    assert {first.url, second.url} == {"a", "b"}
    p.release(first, "ok")
    third = p.try_acquire(avoid=first.url)
    assert third is not None and third.url == second.url  # avoided, though busier
    stats = p.stats()
    assert stats["a"]["sent"] + stats["b"]["sent"] == 3


def test_per_endpoint_cap_and_waiting_for_a_slot() -> None:
    async def main() -> None:
        p = pool("a", "b", max_in_flight_per_endpoint=1)
        a, b = await p.acquire(), await p.acquire()
        assert p.try_acquire() is None
        with pytest.raises(NoEndpointAvailable, match="at its cap of 1"):
            await p.acquire(max_wait_s=0.02)
        waiting = asyncio.create_task(p.acquire(max_wait_s=5))
        await asyncio.sleep(0.01)
        p.release(a, "ok")
        lease = await asyncio.wait_for(waiting, 1)
        assert lease.url == a.url
        p.release(b, "ok")
        p.release(lease, "ok")
        assert p.in_flight == 0

    asyncio.run(main())


def test_failing_endpoint_is_taken_out_probed_and_restored() -> None:
    async def main() -> None:
        p = pool("a", "b", cooldown_base_s=0.05, cooldown_max_s=0.2)
        for _ in range(3):
            lease = p.try_acquire(avoid="b")
            assert lease is not None and lease.url == "a"
            p.release(lease, "down")
        assert not p.stats()["a"]["healthy"] and p.stats()["a"]["ejections"] == 1
        for _ in range(5):  # only b while a cools down
            lease = p.try_acquire()
            assert lease is not None and lease.url == "b"
            p.release(lease, "ok")
        await asyncio.sleep(0.06)
        probe = p.try_acquire(avoid="b")
        assert probe is not None and probe.url == "a" and probe.probe
        other = p.try_acquire(avoid="b")
        assert other is not None and other.url == "b"  # one probe at a time
        p.release(other, "ok")
        p.release(probe, "down")  # failed probe: out again, twice as long
        assert p.endpoints[0].cooldown_s == pytest.approx(0.1)
        await asyncio.sleep(0.11)
        probe = p.try_acquire(avoid="b")
        assert probe is not None and probe.probe
        p.release(probe, "ok")
        assert p.stats()["a"]["healthy"] and p.endpoints[0].cooldown_s == 0

    asyncio.run(main())


def test_when_all_are_out_requests_wait_for_the_earliest() -> None:
    async def main() -> None:
        p = pool("a", "b", failure_threshold=1, cooldown_base_s=0.1)
        for url in ("a", "b"):
            lease = p.try_acquire(avoid="b" if url == "a" else "a")
            assert lease is not None and lease.url == url
            p.release(lease, "down")
            if url == "a":
                await asyncio.sleep(0.06)  # b goes out 0.06 s after a
        assert p.try_acquire() is None
        started = time.monotonic()
        lease = await p.acquire(max_wait_s=5)
        assert time.monotonic() - started < 0.09 and lease.probe and lease.url == "a"
        with pytest.raises(NoEndpointAvailable, match="out of rotation"):
            await p.acquire(max_wait_s=0.01)  # the other is still cooling down or probing
        p.release(lease, "ok")

    asyncio.run(main())


def test_a_single_endpoint_is_never_taken_out() -> None:
    p = pool("only", failure_threshold=1)
    for _ in range(5):
        lease = p.try_acquire()
        assert lease is not None
        p.release(lease, "down")
    assert p.stats()["only"]["healthy"] and p.stats()["only"]["failed"] == 5


def test_alive_answers_reset_the_failure_streak() -> None:
    p = pool("a", "b", failure_threshold=2)
    for outcome in ("down", "alive", "down"):
        lease = p.try_acquire(avoid="b")
        assert lease is not None
        p.release(lease, outcome)  # type: ignore[arg-type]
    assert p.stats()["a"]["healthy"] and p.stats()["a"]["failed"] == 3
