"""Teacher backends. ``make_teacher`` picks one from a TeacherConfig; each lives in its own file."""

from __future__ import annotations

from selfinstruct.config import TeacherConfig
from selfinstruct.teachers.base import Completion, Message, Request, Teacher

__all__ = ["Completion", "Message", "Request", "Teacher", "make_teacher"]


def make_teacher(config: TeacherConfig) -> Teacher:
    """Build (but do not start) the teacher the config asks for. Imports are lazy: the local
    and vllm backends pull in heavy optional packages only when chosen."""
    kind = config.resolved_kind()
    if kind == "openai":
        from selfinstruct.teachers.openai import OpenAITeacher

        return OpenAITeacher(config)
    if kind == "openai-batch":
        from selfinstruct.teachers.openai_batch import OpenAIBatchTeacher

        return OpenAIBatchTeacher(config)
    if kind == "local":
        from selfinstruct.teachers.local import LocalTeacher

        return LocalTeacher(config)
    from selfinstruct.teachers.vllm import VllmTeacher

    return VllmTeacher(config)
