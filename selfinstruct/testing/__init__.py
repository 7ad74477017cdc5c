"""Test helpers users can use too: a scripted OpenAI-compatible server (a fast "fake model")."""

from __future__ import annotations

from selfinstruct.testing.openai_server import (
    FAULT_KINDS,
    RecordedRequest,
    Reply,
    ScriptedOpenAIServer,
    echo_responder,
)

__all__ = ["FAULT_KINDS", "RecordedRequest", "Reply", "ScriptedOpenAIServer", "echo_responder"]
