"""Shared fixtures: paths, and a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.openai_server import ScriptedOpenAIServer
from tests.support.scripted_teacher import SelfInstructResponder

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REFERENCE_SEEDS = SHARED / "reference" / "self-instruct-seed-tasks.jsonl"
SEEDS = REPO / "seeds" / "seed_tasks.jsonl"


@pytest.fixture(autouse=True)
def _own_cache_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own response-cache directory: none shares replies with another
    test or touches the real ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def scripted_server() -> Iterator[ScriptedOpenAIServer]:
    """A loopback server answering all three stages like a (very simple) teacher."""
    with ScriptedOpenAIServer(SelfInstructResponder()) as server:
        yield server


def run_teacher(teacher: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Start a teacher, run ``work`` on it and close it, all in one event loop."""

    async def main() -> T:
        try:
            await teacher.start()
            return await work(teacher)
        finally:
            await teacher.aclose()

    return asyncio.run(main())
