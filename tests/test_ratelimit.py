"""Rate limits: the token buckets on a fake clock, and the headers a scripted server sends."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.teachers.base import Message, Request
from selfinstruct.teachers.choice import parse_teacher_config
from selfinstruct.teachers.openai import OpenAIConfig, OpenAITeacher
from selfinstruct.teachers.pool import TeacherPool
from selfinstruct.teachers.ratelimit import RateLimiter, estimate_tokens, parse_duration
from tests.support.openai_server import Reply, ScriptedOpenAIServer

from .conftest import run_teacher


class FakeClock:
    """A clock that moves only when the limiter sleeps; it keeps every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(clock: FakeClock, rpm: float | None = None, tpm: float | None = None) -> RateLimiter:
    return RateLimiter(rpm, tpm, burst_s=10.0, clock=clock, sleep=clock.sleep)


def send_times(clock: FakeClock, rate: RateLimiter, sizes: list[int]) -> list[float]:
    async def main() -> list[float]:
        times = []
        for size in sizes:
            await rate.acquire(size)
            times.append(clock.now - 1000.0)
        return times

    return asyncio.run(main())


def test_requests_per_minute_allow_a_burst_then_one_request_per_interval():
    clock = FakeClock()
    rate = limiter(clock, rpm=60)  # 1 a second, a burst of 10
    times = send_times(clock, rate, [0] * 14)
    assert times[:10] == [0.0] * 10
    assert times[10:] == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert rate.waits == 4


def test_tokens_per_minute_pace_by_estimated_size_and_settle_with_what_was_used():
    clock = FakeClock()
    rate = limiter(clock, tpm=6000)  # 100 tokens a second, a burst of 1000
    times = send_times(clock, rate, [600, 600])
    assert times == pytest.approx([0.0, 2.0])  # 400 left: 200 more take 2 s
    rate.settle(600, 100)  # the last one used 100 of the 600 taken: 500 come back
    assert send_times(clock, rate, [500]) == pytest.approx([2.0])
    # a request bigger than the whole burst waits for a full bucket, not forever
    clock2 = FakeClock()
    big = limiter(clock2, tpm=600)
    assert send_times(clock2, big, [5000, 5000]) == pytest.approx([0.0, 10.0])


def test_headers_pause_at_zero_remaining_and_space_requests_when_few_are_left():
    clock = FakeClock()
    rate = limiter(clock)  # no configured limit: headers alone
    assert not rate.limited
    rate.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.5s"})
    assert send_times(clock, rate, [10]) == pytest.approx([1.5])
    rate.observe(
        {
            "X-RateLimit-Limit-Requests": "100",
            "X-RateLimit-Remaining-Requests": "4",  # under 10%: 4 left for the next 2 s
            "X-RateLimit-Reset-Requests": "2s",
        }
    )
    assert send_times(clock, rate, [10, 10, 10]) == pytest.approx([2.0, 2.5, 3.0])
    assert rate.spaced == 1
    # plenty left: no spacing; too few tokens left for a request like the last: pause
    rate.observe({"x-ratelimit-remaining-tokens": "5", "x-ratelimit-reset-tokens": "6m0s"})
    assert rate.delay(10) == pytest.approx(360.0)
    assert rate.pauses == 2


def test_durations_and_estimates():
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("0.25") == 0.25
    assert parse_duration("soon") is None and parse_duration("") is None
    chat = Request(stage="outputs", messages=(Message("user", "x" * 400),), max_tokens=50, n=2)
    assert estimate_tokens(chat) == (400 + 4) // 4 + 1 + 100
    assert estimate_tokens(Request(stage="outputs", prompt="y" * 80, max_tokens=10)) == 31


REQUEST = Request(stage="outputs", messages=(Message("user", "Name a colour."),), max_tokens=8)


def test_the_openai_teacher_follows_the_servers_rate_limit_headers():
    spent = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30ms"}
    replies = iter([Reply(text="Blue.", headers=spent)])

    def responder(kind, body):
        return next(replies, Reply(text="Red."))

    with ScriptedOpenAIServer(responder) as server:
        teacher = OpenAITeacher(
            OpenAIConfig(base_url=server.base_url, model="m", probe_capabilities=False)
        )

        async def work(teacher):
            first = await teacher.complete(REQUEST)
            waits = teacher.rate_limiter.waits
            second = await teacher.complete(REQUEST)
            return first.text, waits, second.text

        first, waits_before, second = run_teacher(teacher, work)
    assert (first, second) == ("Blue.", "Red.")
    assert teacher.rate_limiter.pauses == 1
    assert (waits_before, teacher.rate_limiter.waits) == (0, 1)  # the second one waited


def test_a_429_with_retry_after_pauses_the_teachers_limiter_and_the_request_is_retried():
    with ScriptedOpenAIServer(
        lambda kind, body: Reply(text="ok"),
        faults=[Reply(text="slow down", status=429, headers={"Retry-After": "0.05"})],
    ) as server:
        teacher = OpenAITeacher(
            OpenAIConfig(base_url=server.base_url, model="m", probe_capabilities=False),
            backoff_base_s=0.01,
        )

        async def work(teacher):
            return await asyncio.gather(*(teacher.complete(REQUEST) for _ in range(4)))

        answers = run_teacher(teacher, work)
    assert [a.text for a in answers] == ["ok"] * 4
    assert server.faults_served == ["reply:429"]
    assert teacher.rate_limiter.pauses == 1 and teacher.retries == 1


def test_configured_limits_reach_the_teacher_and_other_backends_get_one_in_the_pool(tmp_path):
    config = OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="m", requests_per_minute=30)
    pool = TeacherPool({"outputs": config}, tmp_path)
    openai_teacher = pool["outputs"]
    assert isinstance(openai_teacher, OpenAITeacher) and openai_teacher.rate_limiter.limited
    assert pool._limiters == {}  # the OpenAI teacher paces its own attempts
    local = parse_teacher_config({"kind": "local", "tokens_per_minute": 1000})
    shared = TeacherPool({"classify": local, "inputs": local}, tmp_path)
    assert shared._limiters["classify"] is shared._limiters["inputs"]  # one teacher, one pace


def test_a_limit_that_is_not_positive_is_refused_naming_the_field(tmp_path):
    args = ["generate", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "-n", "1",
            "--out", str(tmp_path / "run"), "--set", "teacher.requests_per_minute=0"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "teacher.requests_per_minute" in result.output
    assert not (tmp_path / "run").exists()
