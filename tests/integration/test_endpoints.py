"""Several endpoints over real HTTP: a dead one is taken out of rotation and the run finishes on
the other; a 429 storm shrinks the adaptive concurrency limit, which then grows back."""

from __future__ import annotations

import asyncio
import threading
import time

from click.testing import CliRunner

from selfinstruct.cli import cli
from selfinstruct.teachers import Message, Request
from selfinstruct.teachers.openai import OpenAIConfig, OpenAITeacher
from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

from .helpers import read_run


def stop_after(server: ScriptedOpenAIServer, requests: int) -> threading.Thread:
    """Stop ``server`` (connections refused from then on) once it has seen ``requests``."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while len(server.requests) < requests and time.monotonic() < deadline:
            time.sleep(0.002)
        server.stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_dead_endpoint_is_taken_out_and_the_run_finishes_on_the_other(tmp_path) -> None:
    out = tmp_path / "run"
    with (
        ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.01) as alive,
        ScriptedOpenAIServer(SelfInstructResponder(), latency_s=0.01) as dying,
    ):
        dying_url = dying.base_url
        watcher = stop_after(dying, 12)
        started = time.monotonic()
        result = CliRunner().invoke(
            cli,
            ["generate", "--base-url", alive.base_url, "--base-url", dying_url,
             "--model", "m", "-n", "20", "--out", str(out), "-q",
             "--set", "teacher.timeout_s=2", "--set", "teacher.max_retries=3"],
        )  # fmt: skip
        elapsed = time.monotonic() - started
        watcher.join(timeout=5)
    assert result.exit_code == 0, result.output
    assert len(dying.requests) >= 12 and not watcher.is_alive()  # it did die mid-run
    run = read_run(out)
    assert run["manifest"].status == "complete"
    assert len({row.instruction_id for row in run["examples"]}) == 20
    ids = [row.id for row in run["examples"]]
    assert len(ids) == len(set(ids))
    # The dead server recorded 12 requests before it stopped; what it missed afterwards we
    # cannot count there, so count what the live one served: nearly everything.
    posts_alive = [r for r in alive.requests if r.path != "/v1/models"]
    assert len(posts_alive) > 3 * 12
    assert elapsed < 20


def test_dead_endpoint_gets_few_requests_after_its_death() -> None:
    """The teacher's own counters: after 3 failures in a row the endpoint is out of rotation,
    so it sees only those, the requests in flight when it died and the odd probe."""
    request = Request(stage="outputs", messages=(Message("user", "Name a colour."),))

    async def main(teacher: OpenAITeacher, dying: ScriptedOpenAIServer) -> dict[str, int]:
        await teacher.start()
        try:
            await asyncio.gather(*(teacher.complete(request) for _ in range(10)))
            sent_before = int(teacher.endpoint_stats()[dying.base_url]["sent"])
            await asyncio.to_thread(dying.stop)
            await asyncio.gather(*(teacher.complete(request) for _ in range(150)))
            stats = teacher.endpoint_stats()[dying.base_url]
            assert stats["healthy"] is False and stats["ejections"] >= 1
            return {"before": sent_before, "after": int(stats["sent"]) - sent_before}
        finally:
            await teacher.aclose()

    with (
        ScriptedOpenAIServer(latency_s=0.01) as alive,
        ScriptedOpenAIServer(latency_s=0.01) as dying,
    ):
        config = OpenAIConfig.model_validate(
            {"base_url": [alive.base_url, dying.base_url], "model": "m", "max_concurrency": 8}
        )
        teacher = OpenAITeacher(config, backoff_base_s=0.01, backoff_max_s=0.05)
        counts = asyncio.run(main(teacher, dying))
        served = len([r for r in alive.requests if r.path != "/v1/models"])
    assert counts["before"] >= 3
    assert counts["after"] <= 8  # 3 to take it out + stragglers, against 150 on the other
    assert served >= 150
    assert teacher.failures == 0


def test_a_429_storm_shrinks_the_limit_and_it_grows_back() -> None:
    request = Request(stage="outputs", messages=(Message("user", "Name a colour."),))
    limits: list[int] = []

    async def main(teacher: OpenAITeacher) -> None:
        async def sample() -> None:
            while True:
                limits.append(teacher.concurrency_limit)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        try:
            await asyncio.gather(*(teacher.complete(request) for _ in range(300)))
        finally:
            sampler.cancel()
            await teacher.aclose()

    with ScriptedOpenAIServer(faults=["429"] * 40, retry_after_s=0.01, latency_s=0.005) as server:
        config = OpenAIConfig.model_validate(
            {"base_url": server.base_url, "model": "m", "max_concurrency": 16, "max_retries": 20}
        )
        teacher = OpenAITeacher(config, backoff_base_s=0.01, backoff_max_s=0.05)
        assert teacher.concurrency_limit == 16  # starts at the ceiling
        ramped = OpenAITeacher(config.model_copy(update={"initial_concurrency": 4}))
        assert ramped.concurrency_limit == 4
        asyncio.run(main(teacher))
        assert server.max_in_flight <= 16
    limiter = teacher.limiter
    assert limiter.cuts >= 2
    assert limiter.lowest_limit <= 2
    assert teacher.concurrency_limit >= 6, limits[-20:]  # grew back
    assert teacher.failures == 0
    assert teacher.endpoint_stats()[server.base_url]["healthy"] is True  # 429 is not "down"


def test_fixed_concurrency_when_adaptive_is_off() -> None:
    config = OpenAIConfig.model_validate(
        {"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_concurrency": 40,
         "adaptive_concurrency": False, "max_concurrency_per_endpoint": 10}
    )  # fmt: skip
    teacher = OpenAITeacher(config)
    assert teacher.concurrency_limit == 40 == teacher.max_concurrency
    assert teacher.pool.max_in_flight_per_endpoint == 10
    assert set(teacher.endpoint_stats()) == {"http://127.0.0.1:9/v1"}
