"""The vLLM teacher's setup errors and its wiring to the coalescer (no vLLM needed)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from selfinstruct.errors import TeacherError, TeacherUnavailable
from selfinstruct.teachers import make_teacher
from selfinstruct.teachers.base import Request, Teacher
from selfinstruct.teachers.vllm import DEFAULT_MAX_BATCH, VllmConfig, VllmTeacher


def run(coro):
    return asyncio.run(coro)


def req(i: int) -> Request:
    return Request(stage="instructions", prompt=str(i))


# -- the vLLM teacher itself: setup errors, and its batch function wired to the batcher ------


def test_factory_builds_the_vllm_teacher_without_importing_vllm():
    teacher = make_teacher(VllmConfig(model="Qwen/Qwen2.5-0.5B-Instruct"))
    assert isinstance(teacher, VllmTeacher)
    assert isinstance(teacher, Teacher)
    assert teacher.api == "completions"
    assert teacher.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert teacher.max_concurrency == DEFAULT_MAX_BATCH
    big = VllmTeacher(VllmConfig(model="m", max_concurrency=1024))
    assert big.max_concurrency == big.batcher.max_items == 1024


def test_missing_vllm_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    teacher = VllmTeacher(VllmConfig(model="Qwen/Qwen2.5-0.5B-Instruct"))
    with pytest.raises(TeacherUnavailable) as caught:
        run(teacher.start())
    message = str(caught.value)
    assert "selfinstruct[vllm]" in message
    assert "CUDA GPU" in message
    assert "vllm serve" in message and "--base-url" in message


def test_vllm_needs_a_model():
    with pytest.raises(TeacherUnavailable, match=r"teacher\.model"):
        run(VllmTeacher(VllmConfig()).start())


def test_complete_before_start_is_a_teacher_error():
    teacher = VllmTeacher(VllmConfig(model="m"))
    with pytest.raises(TeacherError, match="not started"):
        run(teacher.complete(req(1)))
