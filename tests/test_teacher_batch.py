"""OpenAIBatchTeacher over real HTTP against the loopback Files + Batches server (no mocks)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from selfinstruct.errors import TeacherError
from selfinstruct.teachers import Message, Request, Teacher, make_teacher
from selfinstruct.teachers.choice import parse_teacher_config
from selfinstruct.teachers.openai_batch import (
    OpenAIBatchConfig,
    OpenAIBatchTeacher,
    custom_id,
)
from selfinstruct.teachers.openai_wire import request_body
from tests.support.batch_server import BatchServer
from tests.support.openai_server import Kind, Reply, echo_responder, prompt_text

from .conftest import run_teacher as run

SECRET = "sk-batch-SECRET-77"


def chat(i: int | str) -> Request:
    return Request(stage="outputs", messages=(Message("user", f"ask {i}"),), seed=7)


def poison_responder(kind: Kind, body: dict[str, Any]) -> Reply:
    if "poison" in prompt_text(kind, body):
        return Reply(status=400, text="this line is poisoned")
    return echo_responder(kind, body)


@pytest.fixture
def server() -> Iterator[BatchServer]:
    with BatchServer(poison_responder) as running:
        yield running


def teacher_for(server: BatchServer, batch_dir: Path | None, **fields: Any) -> OpenAIBatchTeacher:
    config = parse_teacher_config(
        {
            "kind": "openai-batch",
            "base_url": server.base_url,
            "model": "scripted-model",
            "batch_dir": batch_dir,
            "batch_flush_s": 0.05,
            "batch_poll_s": 0.02,
            "max_retries": 2,
            **fields,
        }
    )
    return OpenAIBatchTeacher(config, backoff_base_s=0.01, backoff_max_s=0.05)


def gather(requests: list[Request]) -> Callable[[OpenAIBatchTeacher], Awaitable[list[Any]]]:
    async def work(teacher: OpenAIBatchTeacher) -> list[Any]:
        return await asyncio.gather(
            *(teacher.complete(r) for r in requests), return_exceptions=True
        )

    return work


def input_lines(server: BatchServer) -> list[dict[str, Any]]:
    return [
        line for batch in server.batches.values() for line in server.file_lines(batch.input_file_id)
    ]


def journal(batch_dir: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (batch_dir / name).read_text().splitlines() if line]


def test_factory_and_defaults() -> None:
    config = OpenAIBatchConfig(base_url=["http://127.0.0.1:9/v1"], model="m")
    teacher = make_teacher(config)
    assert isinstance(teacher, OpenAIBatchTeacher)
    assert isinstance(teacher, Teacher)
    assert teacher.api == "chat"  # like the openai teacher
    assert (config.batch_size, config.completion_window) == (1000, "24h")


def test_coalesces_into_few_batches_and_answers_the_right_callers(server, tmp_path) -> None:
    teacher = teacher_for(server, tmp_path / "b", batch_size=10)
    results = run(teacher, gather([chat(i) for i in range(25)]))
    assert [r.text for r in results] == [f"echo: ask {i}" for i in range(25)]
    assert all(r.finish_reason == "stop" and r.model == "scripted-model" for r in results)
    assert all(r.usage.prompt_tokens == 2 and r.usage.completion_tokens == 3 for r in results)
    assert sorted(teacher.batch_sizes) == [5, 10, 10]
    assert len(server.batches) == 3
    assert all(b.status == "completed" for b in server.batches.values())
    # the lines: one chat request each, the openai teacher's body, a stable custom_id
    lines = input_lines(server)
    assert len(lines) == 25
    for line in lines:
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        body = line["body"]
        assert "n" not in body and body["model"] == "scripted-model" and body["seed"] == 7
        assert line["custom_id"] == custom_id("/v1/chat/completions", body, "outputs")
    # the journal: 3 batches submitted then completed, 25 answers
    batches = journal(tmp_path / "b", "batches.jsonl")
    assert sorted(row["status"] for row in batches) == ["completed"] * 3 + ["submitted"] * 3
    assert len(journal(tmp_path / "b", "results.jsonl")) == 25


def test_flush_timer_splits_requests_apart_in_time(server) -> None:
    async def work(teacher: OpenAIBatchTeacher) -> list[str]:
        first = asyncio.gather(*(teacher.complete(chat(i)) for i in range(3)))
        await asyncio.sleep(0.15)  # > batch_flush_s: the first three are on their way
        second = asyncio.gather(*(teacher.complete(chat(i)) for i in range(3, 5)))
        return [c.text for c in [*await first, *await second]]

    teacher = teacher_for(server, None, batch_size=100)
    texts = run(teacher, work)
    assert texts == [f"echo: ask {i}" for i in range(5)]
    assert teacher.batch_sizes == [3, 2]


def test_completions_api_sends_one_string_prompt(server) -> None:
    requests = [Request(stage="instructions", prompt=f"Task 1: x\nTask {i}:") for i in range(3)]
    teacher = teacher_for(server, None, api="completions")
    results = run(teacher, gather(requests))
    assert [r.text for r in results] == [f"echo: Task {i}:" for i in range(3)]
    for line in input_lines(server):
        assert line["url"] == "/v1/completions"
        assert isinstance(line["body"]["prompt"], str) and "messages" not in line["body"]
    assert [b.endpoint for b in server.batches.values()] == ["/v1/completions"]


def test_identical_requests_share_one_line(server) -> None:
    teacher = teacher_for(server, None)
    results = run(teacher, gather([chat("same")] * 4 + [chat("other")]))
    assert [r.text for r in results] == ["echo: ask same"] * 4 + ["echo: ask other"]
    assert teacher.batch_sizes == [2]


def test_a_failed_line_fails_only_its_caller(server, tmp_path) -> None:
    requests = [chat(0), chat("poison"), chat(2)]
    server.add_faults("500")  # the first line processed gets a server error too
    teacher = teacher_for(server, tmp_path)
    results = run(teacher, gather(requests))
    errors = [r for r in results if isinstance(r, TeacherError)]
    assert len(errors) == 2, results
    poisoned = results[1]
    assert isinstance(poisoned, TeacherError)
    assert "HTTP 400" in str(poisoned) and "poisoned" in str(poisoned)
    assert any("HTTP 500" in str(e) for e in errors)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert teacher.batch_sizes == [3]
    assert len(journal(tmp_path, "results.jsonl")) == 1  # only answers are stored
    # asked again, the failed ones are sent again (a new batch), the answer is not
    again = teacher_for(server, tmp_path)
    second = run(again, gather([chat(0), chat(2)]))
    assert [r.text for r in second] == ["echo: ask 0", "echo: ask 2"]
    assert again.batch_sizes == [1] and again.answered_from_journal == 1


@pytest.mark.parametrize("outcome", ["expired", "failed", "cancelled"])
def test_a_batch_that_ends_without_output_fails_its_callers(server, outcome) -> None:
    server.add_batch_outcomes(outcome)
    teacher = teacher_for(server, None)

    async def work(teacher: OpenAIBatchTeacher) -> tuple[list[Any], Any]:
        failed = await gather([chat(0), chat(1)])(teacher)
        return failed, await teacher.complete(chat(0))  # resubmitted: this batch completes

    failed, retried = run(teacher, work)
    assert all(isinstance(r, TeacherError) and outcome in str(r) for r in failed)
    assert retried.text == "echo: ask 0"
    assert teacher.batch_sizes == [2, 1]


def test_resume_answers_from_the_journal_without_any_request(server, tmp_path) -> None:
    requests = [chat(i) for i in range(6)]
    first = run(teacher_for(server, tmp_path), gather(requests))
    before = len(server.requests)
    second_teacher = teacher_for(server, tmp_path)
    second = run(second_teacher, gather(requests))
    assert len(server.requests) == before  # not one HTTP request
    assert [c.text for c in second] == [c.text for c in first]
    assert [c.usage for c in second] == [c.usage for c in first]
    assert second_teacher.answered_from_journal == 6 and second_teacher.batch_sizes == []


def test_resume_waits_for_an_unfinished_batch_instead_of_resubmitting(server, tmp_path) -> None:
    requests = [chat(i) for i in range(4)]
    server.hold()

    async def submit_then_die(teacher: OpenAIBatchTeacher) -> None:
        calls = [asyncio.ensure_future(teacher.complete(r)) for r in requests]
        deadline = time.monotonic() + 5
        while not teacher.batch_sizes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # a poll or two: still in progress
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)

    run(teacher_for(server, tmp_path), submit_then_die)  # "killed" mid-batch
    assert [row["status"] for row in journal(tmp_path, "batches.jsonl")] == ["submitted"]
    assert [b.status for b in server.batches.values()] == ["in_progress"]

    async def resume(teacher: OpenAIBatchTeacher) -> list[Any]:
        calls = asyncio.gather(*(teacher.complete(r) for r in requests))
        await asyncio.sleep(0.1)
        server.release()
        return await calls

    second = teacher_for(server, tmp_path)
    results = run(second, resume)
    assert [r.text for r in results] == [f"echo: ask {i}" for i in range(4)]
    assert second.batch_sizes == []  # nothing submitted again
    assert server.batch_paths().count("/v1/batches") == 1
    assert server.batch_paths().count("/v1/files") == 1
    assert journal(tmp_path, "batches.jsonl")[-1]["status"] == "completed"


def test_a_caller_that_gives_up_before_the_flush_is_not_sent(server) -> None:
    async def work(teacher: OpenAIBatchTeacher) -> str:
        doomed = asyncio.ensure_future(teacher.complete(chat("doomed")))
        await asyncio.sleep(0)
        doomed.cancel()
        return (await teacher.complete(chat("kept"))).text

    teacher = teacher_for(server, None)
    assert run(teacher, work) == "echo: ask kept"
    assert [line["body"]["messages"][0]["content"] for line in input_lines(server)] == ["ask kept"]


def test_a_torn_journal_line_is_skipped(server, tmp_path) -> None:
    run(teacher_for(server, tmp_path), gather([chat(1)]))
    with (tmp_path / "results.jsonl").open("a") as handle:
        handle.write('{"custom_id": "si-torn", "bo')  # killed mid-write
    teacher = teacher_for(server, tmp_path)
    results = run(teacher, gather([chat(1), chat(2)]))
    assert [r.text for r in results] == ["echo: ask 1", "echo: ask 2"]
    assert teacher.answered_from_journal == 1
    rows = journal_tolerant(tmp_path / "results.jsonl")
    assert [row["custom_id"] for row in rows][-1] == custom_id(
        "/v1/chat/completions", request_body("chat", "scripted-model", chat(2)), "outputs"
    )


def journal_tolerant(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def test_api_key_is_sent_but_never_written(server, tmp_path) -> None:
    teacher = teacher_for(server, tmp_path, api_key=SECRET)
    run(teacher, gather([chat(1)]))
    assert all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in server.requests)
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert SECRET not in written


def test_unreachable_server_fails_every_caller(tmp_path) -> None:
    with BatchServer() as doomed:
        url = doomed.base_url
    config = OpenAIBatchConfig(base_url=[url], model="m", batch_flush_s=0.01, max_retries=1
    )
    teacher = OpenAIBatchTeacher(config, batch_dir=tmp_path, backoff_base_s=0.01)
    results = run(teacher, gather([chat(1), chat(2)]))
    assert all(isinstance(r, TeacherError) and "not submitted" in str(r) for r in results)
    assert not (tmp_path / "batches.jsonl").exists()
