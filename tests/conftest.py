"""Shared fixtures: paths, and a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selfinstruct.testing.openai_server import ScriptedOpenAIServer
from selfinstruct.testing.scripted_teacher import SelfInstructResponder

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REFERENCE_SEEDS = SHARED / "reference" / "self-instruct-seed-tasks.jsonl"
SEEDS = REPO / "seeds" / "seed_tasks.jsonl"


@pytest.fixture
def scripted_server() -> Iterator[ScriptedOpenAIServer]:
    """A loopback server answering all three stages like a (very simple) teacher."""
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        yield server
