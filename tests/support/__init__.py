"""Test support, not shipped in the wheel: scripted OpenAI-compatible servers ("fake models")."""

from __future__ import annotations

from tests.support.openai_server import (
    FAULT_KINDS,
    RecordedRequest,
    Reply,
    ScriptedOpenAIServer,
    echo_responder,
)

__all__ = ["FAULT_KINDS", "RecordedRequest", "Reply", "ScriptedOpenAIServer", "echo_responder"]
