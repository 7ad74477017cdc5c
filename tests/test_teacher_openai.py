"""OpenAITeacher over real HTTP against the scripted server on 127.0.0.1 (no mocked client)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.teachers import Message, Request, Teacher, make_teacher
from selfinstruct.teachers.choice import parse_teacher_config
from selfinstruct.teachers.openai import OpenAICompletion, OpenAIConfig, OpenAITeacher
from tests.support import Reply, ScriptedOpenAIServer

from .conftest import run_teacher as run

SECRET = "sk-test-SECRET123"
CHAT = Request(stage="outputs", messages=(Message("user", "Name a colour."),))
PROMPT = Request(stage="instructions", prompt="Task 1: Say hi.\nTask 2:")


def teacher_for(urls: str | list[str], **fields: Any) -> OpenAITeacher:
    config = parse_teacher_config(
        {"base_url": urls, "model": "scripted-model", "max_retries": 3, **fields}
    )
    return OpenAITeacher(config, backoff_base_s=0.01, backoff_max_s=0.05)


def complete(teacher: OpenAITeacher, request: Request) -> OpenAICompletion:
    async def work(t: OpenAITeacher) -> OpenAICompletion:
        completion = await t.complete(request)
        assert isinstance(completion, OpenAICompletion)
        return completion

    return run(teacher, work)


def posts(server: ScriptedOpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path != "/v1/models"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_is_a_teacher_and_built_by_make_teacher() -> None:
    config = OpenAIConfig(base_url=["http://127.0.0.1:1/v1"], model="m")
    teacher = make_teacher(config)
    assert isinstance(teacher, OpenAITeacher)
    assert isinstance(teacher, Teacher)
    assert (teacher.api, teacher.model, teacher.max_concurrency) == ("chat", "m", 8)
    asyncio.run(teacher.aclose())


def test_chat_happy_path_sends_what_was_asked() -> None:
    request = Request(
        stage="outputs",
        messages=(Message("system", "Be brief."), Message("user", "Name a colour.")),
        max_tokens=77,
        temperature=0.3,
        top_p=0.9,
        stop=("\n\n", "Task"),
        seed=5,
    )
    with ScriptedOpenAIServer(lambda kind, body: Reply(text="Blue.", prompt_tokens=12)) as server:
        completion = complete(teacher_for(server.base_url), request)
    assert completion.text == "Blue."
    assert completion.finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 1)
    assert completion.model == "scripted-model"
    assert completion.latency_s > 0
    assert completion.choices == 1
    [body] = posts(server)
    assert server.requests[0].path == "/v1/chat/completions"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
    ]
    assert body["model"] == "scripted-model"
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (77, 0.3, 0.9)
    assert body["stop"] == ["\n\n", "Task"]
    assert body["seed"] == 5
    assert "n" not in body


def test_completions_happy_path_sends_a_string_prompt() -> None:
    with ScriptedOpenAIServer(lambda kind, body: " Write a haiku.\nTask 3: more") as server:
        teacher = teacher_for(server.base_url, api="completions")
        assert teacher.api == "completions"
        completion = complete(teacher, PROMPT)
    assert completion.text == " Write a haiku.\nTask 3: more"
    [body] = posts(server)
    assert server.requests[0].path == "/v1/completions"
    assert body["prompt"] == "Task 1: Say hi.\nTask 2:"
    assert body["max_tokens"] == 512
    assert "stop" not in body  # empty stop is omitted
    assert "seed" not in body  # seed None is omitted
    assert "n" not in body


def test_stop_sequences_reach_the_server() -> None:
    request = Request(stage="instructions", prompt="Task 1:", stop=("Task 3",))
    with ScriptedOpenAIServer(lambda kind, body: "a\nTask 2: b\nTask 3: c") as server:
        completion = complete(teacher_for(server.base_url, api="completions"), request)
    assert completion.text == "a\nTask 2: b\n"


def test_wrong_request_shape_for_the_api_is_a_programming_error() -> None:
    teacher = teacher_for("http://127.0.0.1:1/v1")  # chat
    with pytest.raises(ValueError, match="needs messages"):
        run(teacher, lambda t: t.complete(PROMPT))


def test_model_discovery() -> None:
    with ScriptedOpenAIServer(models=["llama-3-8b", "other"]) as server:
        teacher = teacher_for(server.base_url, model=None)
        assert teacher.model == ""
        completion = complete(teacher, CHAT)
    assert teacher.model == "llama-3-8b"
    assert completion.model == "llama-3-8b"
    assert posts(server)[0]["model"] == "llama-3-8b"


def test_no_model_served() -> None:
    with ScriptedOpenAIServer(models=[]) as server:
        teacher = teacher_for(server.base_url, model=None)
        with pytest.raises(TeacherUnavailable) as info:
            run(teacher, lambda t: t.complete(CHAT))
    assert str(info.value) == f"no model served at {server.base_url}; pass --model"


def test_unreachable_server() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    teacher = teacher_for(url, model=None, api_key=SECRET)
    with pytest.raises(TeacherUnavailable) as info:
        run(teacher, lambda t: t.complete(CHAT))
    assert str(info.value) == f"cannot reach {url}: connection refused"


@pytest.mark.parametrize(
    "fault",
    ["429", "500", "502", "503", "504", "drop", "malformed", "no_choices", "timeout"],
)
def test_retryable_faults_recover(fault: str) -> None:
    with ScriptedOpenAIServer(
        lambda kind, body: "fine", faults=[fault], retry_after_s=0.01, timeout_delay_s=3.0
    ) as server:
        teacher = teacher_for(server.base_url, timeout_s=0.5 if fault == "timeout" else 5.0)
        completion = complete(teacher, CHAT)
    assert completion.text == "fine"
    assert server.faults_served == [fault]
    assert len(posts(server)) == 2
    assert (teacher.retries, teacher.requests_sent, teacher.failures) == (1, 2, 0)


def test_other_malformed_bodies_are_retried() -> None:
    faults = [
        Reply(raw_body=b"<html>gateway</html>", headers={"Content-Type": "text/html"}),
        Reply(raw_body=b'{"object": "chat.completion"}'),  # no choices at all
        Reply(status=599, text="odd 5xx"),
    ]
    with ScriptedOpenAIServer(lambda kind, body: "fine", faults=faults) as server:
        teacher = teacher_for(server.base_url)
        assert complete(teacher, CHAT).text == "fine"
    assert teacher.retries == 3


@pytest.mark.parametrize("fault", ["empty", "length", "content_filter"])
def test_content_outcomes_are_returned_not_retried(fault: str) -> None:
    with ScriptedOpenAIServer(lambda kind, body: "abcdef", faults=[fault]) as server:
        teacher = teacher_for(server.base_url)
        completion = complete(teacher, CHAT)
    expected = {
        "empty": ("", "stop"),
        "length": ("abc", "length"),
        "content_filter": ("", "content_filter"),
    }
    assert (completion.text, completion.finish_reason) == expected[fault]
    assert teacher.retries == 0


def test_retry_after_is_honoured() -> None:
    with ScriptedOpenAIServer(faults=["429"], retry_after_s=0.3) as server:
        teacher = teacher_for(server.base_url)
        started = time.perf_counter()
        complete(teacher, CHAT)
        elapsed = time.perf_counter() - started
    assert teacher.retries == 1
    assert elapsed >= 0.3  # backoff alone would have waited ~0.01-0.02 s


def test_retry_after_is_capped() -> None:
    config = OpenAIConfig(base_url=["x"], model="m", max_retries=1)
    with ScriptedOpenAIServer(faults=["429"], retry_after_s=60) as server:
        config = config.model_copy(update={"base_url": [server.base_url]})
        teacher = OpenAITeacher(config, backoff_base_s=0.01, max_retry_after_s=0.05)
        started = time.perf_counter()
        complete(teacher, CHAT)
        assert time.perf_counter() - started < 5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_fail_at_once(status: int) -> None:
    reply = Reply(status=status, text=f"scripted refusal {status}")
    with ScriptedOpenAIServer(lambda kind, body: reply) as server:
        teacher = teacher_for(server.base_url)
        with pytest.raises(TeacherError) as info:
            complete(teacher, CHAT)
    assert len(posts(server)) == 1
    assert teacher.retries == 0
    assert teacher.failures == 1
    message = str(info.value)
    assert message == f"HTTP {status} from {server.base_url}: scripted refusal {status}"
    assert "\n" not in message


def test_retries_exhausted() -> None:
    with ScriptedOpenAIServer(faults=["503"] * 10) as server:
        teacher = teacher_for(server.base_url, max_retries=2)
        with pytest.raises(TeacherError) as info:
            complete(teacher, CHAT)
    assert len(posts(server)) == 3
    assert teacher.retries == 2
    assert str(info.value) == (
        f"outputs request to scripted-model failed after 3 attempts: "
        f"HTTP 503 from {server.base_url}: scripted server error 503"
    )


def test_no_retries_when_max_retries_is_zero() -> None:
    with ScriptedOpenAIServer(faults=["500"]) as server:
        teacher = teacher_for(server.base_url, max_retries=0)
        with pytest.raises(TeacherError, match="failed after 1 attempt: HTTP 500"):
            complete(teacher, CHAT)
    assert len(posts(server)) == 1


def test_concurrency_is_bounded() -> None:
    seen_in_flight: list[int] = []

    async def work(t: OpenAITeacher) -> list[Any]:
        async def sample() -> None:
            while True:
                seen_in_flight.append(t.in_flight)
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            return await asyncio.gather(*(t.complete(CHAT) for _ in range(12)))
        finally:
            sampler.cancel()

    with ScriptedOpenAIServer(latency_s=0.1) as server:
        teacher = teacher_for(server.base_url, max_concurrency=3)
        started = time.perf_counter()
        results = run(teacher, work)
        elapsed = time.perf_counter() - started
    assert len(results) == 12
    assert 1 <= server.max_in_flight <= 3
    assert max(seen_in_flight) <= 3
    assert teacher.in_flight == 0
    assert teacher.requests_sent == 12
    assert elapsed >= 0.4  # 12 requests, 3 at a time, 0.1 s each


def test_two_base_urls_share_the_work() -> None:
    async def work(t: OpenAITeacher) -> list[Any]:
        return await asyncio.gather(*(t.complete(CHAT) for _ in range(10)))

    with (
        ScriptedOpenAIServer(latency_s=0.05) as one,
        ScriptedOpenAIServer(latency_s=0.05) as two,
    ):
        teacher = teacher_for([one.base_url, two.base_url], max_concurrency=4)
        assert len(run(teacher, work)) == 10
        assert len(posts(one)) >= 3  # 5 and 5 unless the machine is very busy
        assert len(posts(two)) >= 3
        assert len(posts(one)) + len(posts(two)) == 10

        # one at a time, they still alternate
        async def one_at_a_time(t: OpenAITeacher) -> None:
            for _ in range(4):
                await t.complete(CHAT)

        run(teacher_for([one.base_url, two.base_url], max_concurrency=1), one_at_a_time)
        assert len(posts(one)) + len(posts(two)) == 14
        assert len(posts(one)) >= 5  # one at a time, they alternate: 2 more each


def test_a_retry_goes_to_the_other_endpoint() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with ScriptedOpenAIServer() as live:
        teacher = teacher_for([dead, live.base_url], max_retries=1)
        completions = run(teacher, lambda t: asyncio.gather(t.complete(CHAT), t.complete(CHAT)))
    assert [c.text for c in completions] == ["echo: Name a colour."] * 2
    assert len(posts(live)) == 2


def test_api_key_is_sent_but_never_shown() -> None:
    def responder(kind: str, body: dict[str, Any]) -> Reply:
        return Reply(status=401, text=f"Incorrect API key provided: {SECRET}.")

    with ScriptedOpenAIServer(responder, faults=["503", "503"]) as server:
        teacher = teacher_for(server.base_url, api_key=SECRET, max_retries=1)
        with pytest.raises(TeacherError) as exhausted:
            complete(teacher, CHAT)
        teacher = teacher_for(server.base_url, api_key=SECRET)
        with pytest.raises(TeacherError) as refused:
            complete(teacher, CHAT)
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert "HTTP 503" in str(exhausted.value)
    assert str(refused.value) == (
        f"HTTP 401 from {server.base_url}: Incorrect API key provided: ***."
    )
    for error in (exhausted.value, refused.value):
        assert SECRET not in str(error)
        assert SECRET not in repr(error)
        assert error.__cause__ is None
        assert error.__suppress_context__


def test_no_api_key_sends_a_placeholder() -> None:
    with ScriptedOpenAIServer() as server:
        complete(teacher_for(server.base_url), CHAT)
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_extra_choices_are_counted() -> None:
    with ScriptedOpenAIServer(lambda kind, body: Reply(text="x", choices=3)) as server:
        completion = complete(teacher_for(server.base_url), CHAT)
    assert (completion.text, completion.choices) == ("x", 3)


def test_high_concurrency_uses_several_clients_per_url() -> None:
    with ScriptedOpenAIServer(models=["big"]) as one, ScriptedOpenAIServer() as two:
        urls = [one.base_url, two.base_url, one.base_url + "/"]
        teacher = teacher_for(urls, model=None, max_concurrency=100)
        assert teacher.base_urls == [one.base_url, two.base_url]  # duplicates dropped

        async def four(t: OpenAITeacher) -> None:
            for _ in range(4):
                await t.complete(CHAT)

        run(teacher, four)
    assert teacher.model == "big"
    assert one.paths() == ["/v1/models"] + ["/v1/chat/completions"] * 2
    assert two.paths() == ["/v1/chat/completions"] * 2
