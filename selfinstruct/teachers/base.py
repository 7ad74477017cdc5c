"""What every teacher takes and returns. Teachers own transport only: no prompts, no parsing.

A stage builds a :class:`Request` (either a ``prompt`` for a completions API or
``messages`` for a chat API, whichever the teacher's ``api`` says) and gets back a
:class:`Completion`. Concurrency, retries and token accounting live in the teacher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from selfinstruct.records import Stage, Usage

Api = Literal["chat", "completions"]


class TeacherSettings(BaseModel):
    """What every backend's config has. Each backend module subclasses it with its own fields
    and ``kind: Literal["<its kind>"]``; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    kind: str = Field(description="Which backend answers: openai, openai-batch, local or vllm.")
    model: str | None = Field(
        default=None, description="Model name (unset: discovered from the server, or the default)."
    )
    api: Api = Field(default="chat", description="chat (messages) or completions (a prompt).")
    max_concurrency: int = Field(
        default=8, ge=1, le=4096, description="Requests in flight at once (an upper bound)."
    )
    timeout_s: float = Field(default=120.0, gt=0, description="Seconds one request may take.")
    max_retries: int = Field(
        default=6, ge=0, le=100, description="Retries of a request that failed transiently."
    )
    requests_per_minute: float | None = Field(
        default=None, gt=0, description="Send at most this many requests a minute (unset: no cap)."
    )
    tokens_per_minute: float | None = Field(
        default=None,
        gt=0,
        description="Send at most this many tokens a minute, estimated from the prompt's size "
        "and max_tokens (unset: no cap).",
    )


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ResponseSchema:
    """A JSON schema the reply must follow (structured outputs), kept as canonical JSON text
    so a request stays hashable; each backend puts it in its own wire form."""

    name: str
    schema_json: str

    @property
    def schema(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.schema_json)
        return value


@dataclass(frozen=True)
class Request:
    """One generation request. Exactly one of ``prompt`` / ``messages`` is set."""

    stage: Stage
    prompt: str | None = None
    messages: tuple[Message, ...] | None = None
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: choices wanted from this one prompt; a server that ignores ``n`` returns one
    n: int = 1
    #: constrain the reply to this JSON schema (chat teachers that honour it); None: free text
    response_schema: ResponseSchema | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a Request needs exactly one of prompt or messages")


@dataclass(frozen=True)
class Completion:
    """The teacher's answer: the first choice's text, why it stopped, and what it cost;
    ``more`` holds the further choices, (text, finish_reason) each, when ``n`` > 1 was asked
    and honoured."""

    text: str
    finish_reason: str | None
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    latency_s: float = 0.0
    more: tuple[tuple[str, str | None], ...] = ()

    def all_choices(self) -> list[tuple[str, str | None]]:
        """Every choice as (text, finish_reason), the first one first."""
        return [(self.text, self.finish_reason), *self.more]


@runtime_checkable
class Teacher(Protocol):
    """The transport interface every backend implements (one file each under teachers/)."""

    #: which prompt shape this teacher consumes: ``prompt`` (completions) or ``messages`` (chat)
    api: Api
    #: the model name recorded in provenance
    model: str
    #: how many requests it usefully runs at once (1 for the in-process llama.cpp teacher)
    max_concurrency: int

    async def start(self) -> None:
        """Connect, load the model, or discover the served model's name.

        Raises :class:`selfinstruct.errors.TeacherUnavailable` with a one-line reason.
        """
        ...

    async def complete(self, request: Request) -> Completion:
        """Run one request; raise :class:`selfinstruct.errors.TeacherError` if it fails for good."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or models."""
        ...
