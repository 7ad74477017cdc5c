"""The in-process vLLM teacher on vLLM itself: the whole pipeline, batching, seeds, a prompt
too long for the context, a failed start's reason, and shutdown leaving no engine process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.teachers.base import Completion, Message, Request
from selfinstruct.teachers.vllm import VllmConfig, VllmTeacher
from tests.integration.helpers import read_run

pytest.importorskip("vllm", reason="needs vLLM: run `make test-vllm`")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.vllm

MAX_MODEL_LEN = 512


def engine_children() -> list[str]:
    """Command lines of this process's live descendants (vLLM's engine core and workers),
    leaving out multiprocessing's resource tracker, which lives as long as this process."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            command = " ".join(child.cmdline()) or child.name()
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in command:
                alive.append(command)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_for_no_children(timeout_s: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := engine_children()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def prompt(text: str, seed: int | None = None, max_tokens: int = 24) -> Request:
    return Request(
        stage="outputs", prompt=text, max_tokens=max_tokens, temperature=1.0, seed=seed
    )


@pytest.fixture(scope="module")
def teacher(checkpoint: Path) -> Iterator[VllmTeacher]:
    """One started engine for the module's teacher tests (loading takes 15-40 s on CPU)."""
    config = VllmConfig(model=str(checkpoint), max_model_len=MAX_MODEL_LEN)
    started = VllmTeacher(config, seed=1, max_wait_s=0.05)
    asyncio.run(started.start())
    try:
        yield started
    finally:
        asyncio.run(started.aclose())


def test_the_engine_runs_on_the_device_vllm_found(teacher):
    assert teacher.device == "cpu"
    assert engine_children(), "vLLM's engine core runs in a child process"


def test_concurrent_requests_go_to_the_engine_as_one_batch(teacher):
    chat = Request(
        stage="outputs",
        messages=(Message(role="user", content="Name a colour."),),
        max_tokens=16,
        temperature=0,
    )
    requests = [prompt(f"A sentence about the number {i}:", seed=i) for i in range(5)] + [chat]

    async def ask() -> list:
        return await asyncio.gather(*(teacher.complete(r) for r in requests))

    before = teacher.batcher.batches_run
    answers = asyncio.run(ask())
    assert teacher.batcher.batch_sizes[before:] == [6]
    for answer in answers:  # a sample may be just the end-of-text token, so no text check
        assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
        assert answer.finish_reason in ("stop", "length")
    assert sum(bool(answer.text.strip()) for answer in answers) >= 3
    assert answers[-1].text.strip()
    assert answers[-1].usage.prompt_tokens > 10  # the chat template wrapped the message


def test_a_seeded_request_gives_the_same_text_alone_and_in_a_batch(teacher):
    seeded = prompt("Invent a name for a cat:", seed=1234, max_tokens=32)

    async def ask() -> list[str]:
        alone = await teacher.complete(seeded)
        others = [prompt(f"Count to {i}:") for i in range(3)]
        batch = await asyncio.gather(teacher.complete(seeded), *map(teacher.complete, others))
        return [alone.text, batch[0].text]

    alone, in_batch = asyncio.run(ask())
    assert alone == in_batch
    assert alone.strip()


def test_a_prompt_too_long_for_the_context_fails_alone(teacher):
    too_long = prompt("word " * (MAX_MODEL_LEN + 50))
    fine = [prompt(f"Say hello to person {i}.", seed=i) for i in range(3)]

    async def ask() -> list:
        calls = [teacher.complete(fine[0]), teacher.complete(too_long)]
        calls += [teacher.complete(r) for r in fine[1:]]
        return await asyncio.gather(*calls, return_exceptions=True)

    before = teacher.batcher.batches_run
    answers = asyncio.run(ask())
    assert teacher.batcher.batch_sizes[before:] == [4]
    assert isinstance(answers[1], TeacherError)
    assert "does not fit max_model_len" in str(answers[1])
    assert all(
        isinstance(a, Completion) and a.usage.completion_tokens > 0
        for i, a in enumerate(answers)
        if i != 1
    )


def test_closing_the_teacher_leaves_no_engine_process(teacher):
    assert engine_children()
    asyncio.run(teacher.aclose())
    assert wait_for_no_children() == []
    with pytest.raises(TeacherError):
        asyncio.run(teacher.complete(prompt("too late")))


def test_a_failed_start_names_the_engines_reason_and_leaves_no_process(checkpoint, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)  # on CPU it would win
    config = VllmConfig(model=str(checkpoint), kv_cache_gib=4096)
    failing = VllmTeacher(config)
    try:
        with pytest.raises(TeacherUnavailable) as caught:
            asyncio.run(failing.start())
    finally:
        asyncio.run(failing.aclose())
    message = str(caught.value)
    assert "\n" not in message
    assert "Engine core initialization failed" not in message
    assert "kv" in message.lower() and "memory" in message.lower(), message
    assert wait_for_no_children() == []


def vllm_processes_since(started: float) -> list[str]:
    """vLLM engine processes (they name themselves VLLM::...) started after ``started``."""
    found = []
    for process in psutil.process_iter(["name", "create_time"]):
        name = process.info["name"] or ""
        if name.startswith("VLLM") and process.info["create_time"] >= started - 1:
            found.append(f"{process.pid} {name}")
    return found


def test_the_whole_pipeline_in_process(tmp_path, checkpoint):
    """``selfinstruct generate --teacher vllm`` as a real command: its own process, so vLLM
    starts its engine the way a user's run does, and nothing of it may outlive the command."""
    out = tmp_path / "run"
    args = [
        "generate", "--teacher", "vllm", "--model", str(checkpoint), "-n", "3",
        "--out", str(out), "-q", "--seed", "3",
        "--set", "teacher.max_model_len=2048",
        "--set", "classify_demos=6", "--set", "max_instances_per_instruction=1",
        "--set", "stages.inputs.sampling.max_tokens=48",
        "--set", "stages.outputs.sampling.max_tokens=96",
        "--set", "stages.instructions.sampling.max_tokens=256",
    ]  # fmt: skip
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "selfinstruct", *args],
        capture_output=True, text=True, timeout=420, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run = read_run(out)
    assert len({row.instruction_id for row in run["examples"]}) == 3
    assert run["manifest"].status == "complete"
    assert run["manifest"].usage["outputs"].completion_tokens > 0
    assert all(row.provenance.models["instructions"] == str(checkpoint) for row in run["examples"])
    deadline = time.monotonic() + 15
    while (left := vllm_processes_since(started)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
