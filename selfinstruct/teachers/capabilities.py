"""What an OpenAI-compatible server honours, found with a few tiny requests when a run starts.

Servers differ behind the same API: vLLM honours ``n``, a list of prompts, ``seed`` and JSON
schemas; llama.cpp's server ignores ``n``, rejects list prompts and serves one request at a
time; OpenAI has no completions endpoint for chat models. Each probe is one to three requests
of a few tokens (stage ``probe`` on the wire), and answers True (honoured), False (ignored or
refused) or None (the probe itself could not run: a timeout or a connection error).

A JSON schema is probed in two forms: OpenAI's ``{"type": "json_schema", ...}``
(``json_schema``: OpenAI, vLLM) and llama-cpp-python's ``{"type": "json_object", "schema":
...}`` (``json_object_schema``); :func:`schema_style` picks the one every endpoint honours.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import openai

from selfinstruct.teachers.base import ResponseSchema
from selfinstruct.teachers.openai_wire import STAGE_HEADER, SchemaStyle, response_format

HEADERS = {STAGE_HEADER: "probe"}
_PROMPT = "Write one random English word:"
_SCHEMA = ResponseSchema(
    "probe",
    json.dumps(
        {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": False,
        }
    ),
)
_UNREACHABLE = (openai.APIConnectionError, openai.APITimeoutError)


class CapabilityMemory(Protocol):
    """Where what a server was found to honour is kept between runs (the response cache)."""

    def capabilities(self, url: str, model: str, api: str) -> dict[str, bool | None] | None: ...

    def remember_capabilities(
        self, url: str, model: str, api: str, found: Mapping[str, bool | None]
    ) -> None: ...


async def probe_server(client: openai.AsyncOpenAI, model: str, api: str) -> dict[str, bool | None]:
    """``{"n", "list_prompts", "seed", "json_schema", "json_object_schema": honoured?}`` for
    one endpoint."""
    ask = _Asker(client, model, api)
    result: dict[str, bool | None] = {}
    for name, probe in (
        ("n", _n),
        ("list_prompts", _list_prompts),
        ("seed", _seed),
        ("json_schema", _json_schema),
        ("json_object_schema", _json_object_schema),
    ):
        try:
            result[name] = await probe(ask)
        except _UNREACHABLE:
            result[name] = None
        except (openai.OpenAIError, ValueError, TypeError, KeyError, IndexError):
            result[name] = False  # refused (4xx) or answered in a shape that is not honouring
    return result


class _Asker:
    def __init__(self, client: openai.AsyncOpenAI, model: str, api: str) -> None:
        self.client, self.model, self.api = client, model, api

    async def texts(self, api: str | None = None, text: str = _PROMPT, **body: Any) -> list[str]:
        """The choices' texts of one request for ``text`` on ``api`` (default: the teacher's)."""
        body = {"model": self.model, "max_tokens": 8, "temperature": 1.0, **body}
        if (api or self.api) == "chat":
            body.setdefault("messages", [{"role": "user", "content": text}])
            response = await self.client.chat.completions.create(**body, extra_headers=HEADERS)
            return [choice.message.content or "" for choice in response.choices]
        body.setdefault("prompt", text)
        response = await self.client.completions.create(**body, extra_headers=HEADERS)
        return [choice.text or "" for choice in response.choices]


async def _n(ask: _Asker) -> bool:
    return len(await ask.texts(n=2)) == 2


async def _list_prompts(ask: _Asker) -> bool:
    """Several prompts in one completions request, one choice each (a completions feature)."""
    prompts = [_PROMPT, "Write one random colour:"]
    return len(await ask.texts("completions", prompt=prompts, max_tokens=4)) == 2


async def _seed(ask: _Asker) -> bool:
    """Honoured when the same seed repeats the text, asked right after another prompt and then
    again at once, and another seed changes it (a server that always answers the same, whatever
    the seed, does not honour it). llama-cpp-python's server answers a seeded prompt one way
    when it follows another prompt and another way when it repeats the prompt evaluated last,
    so in a run, where prompts interleave, its seed does not fix the reply."""
    await ask.texts(text="Write one random colour:", seed=1234, max_tokens=4)
    first, again = [(await ask.texts(seed=1234, max_tokens=12))[0] for _ in range(2)]
    others = [(await ask.texts(seed=seed, max_tokens=12))[0] for seed in (99, 2026)]
    return first == again and any(text != first for text in others)


async def _json_schema(ask: _Asker) -> bool:
    """OpenAI's form of a JSON schema in ``response_format`` constrains the reply."""
    return await _constrained(ask, "json_schema")


async def _json_object_schema(ask: _Asker) -> bool:
    """llama-cpp-python's form (``json_object`` with a ``schema``) constrains the reply."""
    return await _constrained(ask, "json_object")


async def _constrained(ask: _Asker, style: SchemaStyle) -> bool:
    """The reply follows the schema (a body field for completions, as vLLM and llama.cpp
    accept it)."""
    form = response_format(_SCHEMA, style)
    settings: dict[str, Any] = {"max_tokens": 24, "temperature": 0.0}
    if ask.api == "chat":
        texts = await ask.texts(response_format=form, **settings)
    else:
        texts = await ask.texts(extra_body={"response_format": form}, **settings)
    value = json.loads(texts[0])
    return isinstance(value, dict) and set(value) == {"ok"} and isinstance(value["ok"], bool)


def schema_style(capabilities: Iterable[Mapping[str, bool | None]]) -> SchemaStyle | None:
    """The ``response_format`` form every probed endpoint honours (OpenAI's first), or None
    when there is no such form or nothing was probed."""
    found = list(capabilities)
    if not found:
        return None
    if all(each.get("json_schema") for each in found):
        return "json_schema"
    if all(each.get("json_object_schema") for each in found):
        return "json_object"
    return None
