"""Teacher backends, one module each (its config class and its teacher), and the registry that
``make_teacher`` and the run config's teacher union are built from.

Adding a backend is one module (a :class:`TeacherSettings` subclass with ``kind:
Literal["<kind>"]``, and a class implementing :class:`Teacher` built from it) plus one line in
:data:`BACKENDS`. Importing a backend module is cheap: heavy packages (llama_cpp, vllm, torch)
are imported only when its teacher starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfinstruct.teachers.base import Completion, Message, Request, Teacher, TeacherSettings
from selfinstruct.teachers.local import LocalConfig, LocalTeacher
from selfinstruct.teachers.openai import OpenAIConfig, OpenAITeacher
from selfinstruct.teachers.openai_batch import OpenAIBatchConfig, OpenAIBatchTeacher
from selfinstruct.teachers.vllm import VllmConfig, VllmTeacher

__all__ = [
    "BACKENDS", "Backend", "Completion", "LocalConfig", "Message", "OpenAIBatchConfig",
    "OpenAIConfig", "Request", "Teacher", "TeacherSettings", "VllmConfig", "make_teacher",
]  # fmt: skip


@dataclass(frozen=True)
class Backend:
    """A teacher backend: its config class and what builds its teacher from that config."""

    config: type[TeacherSettings]
    teacher: Callable[[Any], Teacher]


#: every backend, by ``kind``
BACKENDS: dict[str, Backend] = {
    "openai": Backend(OpenAIConfig, OpenAITeacher),
    "openai-batch": Backend(OpenAIBatchConfig, OpenAIBatchTeacher),
    "local": Backend(LocalConfig, LocalTeacher),
    "vllm": Backend(VllmConfig, VllmTeacher),
}


def make_teacher(config: TeacherSettings) -> Teacher:
    """Build (but do not start) the teacher for a backend's config."""
    backend = BACKENDS.get(config.kind)
    if backend is None or not isinstance(config, backend.config):
        kind, name = config.kind, type(config).__name__
        raise ValueError(f"no teacher backend for a {name} of kind {kind!r}")
    return backend.teacher(config)
